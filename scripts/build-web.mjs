#!/usr/bin/env node
// Builds the dashboard's browser assets into dist/web (shipped in the package: `efftrain serve` needs no build
// step on the user's side): app.js (dashboard + uPlot + marked), playground.js (efftrain's browser-safe pieces +
// tfjs + its wasm backend), the pages, and tfjs's .wasm binaries (esbuild does not bundle them; the page points
// tfjs at /wasm/ with setWasmPaths). platform 'browser' makes any `node:` import in these bundles a build error.
import { build } from 'esbuild';
import { copyFileSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'dist', 'web');
const require = createRequire(import.meta.url);
rmSync(out, { recursive: true, force: true });
mkdirSync(join(out, 'wasm'), { recursive: true });

const pages = ['app', 'playground', 'handwriting'].filter((p) => readdirSync(join(root, 'web')).includes(`${p}.ts`));
await build({
  entryPoints: pages.map((p) => join(root, 'web', `${p}.ts`)),
  outdir: out,
  bundle: true,
  minify: true,
  format: 'esm',
  platform: 'browser',
  target: ['es2022'],
  legalComments: 'linked',
  // The umbrella package would also bundle WebGL, the converter and tf.data, which no page uses.
  alias: { '@tensorflow/tfjs': join(root, 'web', 'tfjs-browser.ts') },
  logLevel: 'warning',
});
for (const f of readdirSync(join(root, 'web'))) if (/\.(html|css)$/.test(f)) copyFileSync(join(root, 'web', f), join(out, f));
copyFileSync(require.resolve('uplot/dist/uPlot.min.css'), join(out, 'uPlot.min.css'));
const wasmDir = dirname(require.resolve('@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm'));
for (const f of readdirSync(wasmDir)) if (f.endsWith('.wasm')) copyFileSync(join(wasmDir, f), join(out, 'wasm', f));
