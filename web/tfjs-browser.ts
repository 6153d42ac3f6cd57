/**
 * What the pages need of `@tensorflow/tfjs`, without the parts they never use (the WebGL backend, the graph-model
 * converter, tf.data): esbuild maps `@tensorflow/tfjs` here for the browser bundles. Same kernels, same numbers:
 * core with all gradients and chained ops (as the umbrella package registers them), layers, and the cpu backend
 * (efftrain's wasm patches bridge missing wasm kernels to it).
 */
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import '@tensorflow/tfjs-core/dist/public/chained_ops/register_all_chained_ops';
export * from '@tensorflow/tfjs-core';
export * from '@tensorflow/tfjs-layers';
import '@tensorflow/tfjs-backend-cpu';
