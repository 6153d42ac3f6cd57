export * from './optimizers.js';
export * from './schedules.js';
export * from './trainer.js';
export * from './checkpoint.js';
export * from './safetensors.js';
export * from './fit.js';
export * from './metrics.js';
export * from './layers.js';
