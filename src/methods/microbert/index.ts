/**
 * MicroBERT (Gessler & Zeldes, "MicroBERT: Effective Training of Low-resource Monolingual BERTs through
 * Parameter Reduction and Multitask Learning", MRL 2022): WordPiece tokenizer, tiny BERT encoder, MLM /
 * UPOS / biaffine-parser heads, multitask pretraining, the parser probe, MST decoding and attachment scores.
 */
export * from './wordpiece.js';
export * from './batch.js';
export * from './mst.js';
export * from './heads.js';
export * from './model.js';
export * from './predict.js';
export * from './mixing.js';
export * from './schedule.js';
export * from './best-weights.js';
export * from './train.js';
export * from './pipeline.js';
export * from './diagnostics.js';
