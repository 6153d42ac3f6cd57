/**
 * CompeteSMoE and sparse mixture-of-experts FFNs for efftrain's transformer (`efftrain/methods/compete-smoe`).
 * Importing this module registers the FFN kind `moe` and the routers `topk`, `xmoe`, `smoe-dropout`, `compete`.
 */
export * from './routing.js';
export * from './gather.js';
export * from './experts.js';
export * from './competition.js';
export * from './moe-ffn.js';
export * from './diagnostics.js';
export * from './training.js';
export * from './routers/types.js';
export * from './routers/registry.js';
export * from './routers/topk.js';
export * from './routers/xmoe.js';
export * from './routers/smoe-dropout.js';
export * from './routers/compete.js';
