import { Option } from 'commander';
import { BACKEND_CHOICES } from '../engine/backend.js';

/** `--backend`, the same on every verb: auto = tfjs-node when it can be imported, else wasm with kernel patches. */
export const backendOption = () =>
  new Option('--backend <name>', 'tfjs backend: auto (tfjs-node if installed, else wasm+OpenBLAS if built, else wasm), wasm, wasm-blas, cpu, node').choices([...BACKEND_CHOICES]).default('auto');
