export * from './backend.js';
export * from './rng.js';
export * from './wasm-patches.js';
export * from './fused.js';
