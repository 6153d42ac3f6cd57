/**
 * Shared machinery of the multi-task experiments (`mtl-multifashion`, `mtl-fashion-domains`): the config
 * schema (model, training, every weighting's `<method>.<option>` keys, `repmtl.<option>`), method names,
 * one (method, seed) run (STL = one network per task; MTL = shared encoder + heads with a weighting and
 * optionally Rep-MTL), the final metrics (per-task accuracy, sec/epoch, TSR entropy on test data, power-law
 * α), Δm against STL in the derive step, and the report sections (ranking by Δm, paired comparison with EW,
 * saliency-share maps, α table).
 */
export * from './config.js';
export * from './methods.js';
export * from './data.js';
export * from './run.js';
export * from './derive.js';
export * from './report.js';
export * from './select.js';
