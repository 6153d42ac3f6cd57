/** The results contract (schemas, validation, the derived-metrics step). Browser-safe. */
export * from './schema.js';
export * from './derive.js';
export * from './validate.js';
