export * from './idx.js';
export * from './image-dataset.js';
export * from './batching.js';
export * from './label-noise.js';
export * from './conllu.js';
