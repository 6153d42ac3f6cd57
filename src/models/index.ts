/** Models: small image classifiers, the FFN contract and registry, and a readable decoder-only transformer. */
export * from './classifiers.js';
export * from './ffn.js';
export * from './transformer.js';
