/**
 * S3 (Sign-Sparse-Shift) low-bit shift networks and the DeepShift-PS baseline for tfjs.
 *
 * Paper: Li, Liu, Yu, Liu, Xu, Partovi Nia, "S³: Sign-Sparse-Shift Reparametrization for Effective
 * Training of Low-bit Shift Networks", NeurIPS 2021 (arXiv 2107.03453). Baseline: Elhoushi et al.,
 * "DeepShift: Towards Multiplication-Less Neural Networks", CVPR-W 2021 (arXiv 1905.13298).
 */
export * from './ste.js';
export * from './param.js';
export * from './layers.js';
export * from './diagnostics.js';
export * from './latent-movement.js';
export * from './batchnorm-training.js';
export * from './shift-cnn.js';
export * from './export.js';
export * from './shift-inference.js';
