export * from './layers.js';
export * from './ffn.js';
export * from './sgt.js';
export * from './linalg.js';
export * from './sgt-guides.js';
