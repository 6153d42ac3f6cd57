/**
 * The package as users get it: the browser entry bundles with esbuild (platform browser) without any `node:`
 * module, and the `npm pack` tarball, installed into a temp project next to that project's own tfjs, imports
 * from every entry; a model with efftrain's custom layer saved with the user's `tf` loads back with it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from './helpers/tmp.js';

// npm test runs from the repository root, after `tsc` has built dist/.
const ROOT = process.cwd();
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { name: string; exports: Record<string, string | { import: string }> };

test('the browser-safe entries bundle for the browser with esbuild and no node: import', async () => {
  const esbuild = await import('esbuild');
  const entries = Object.entries(pkg.exports).filter(([k]) => k !== './node' && k !== './package.json');
  const contents = entries.map(([, t], i) => `export * as e${i} from ${JSON.stringify(join(ROOT, typeof t === 'string' ? t : t.import))};`).join('\n');
  const nodeImports: string[] = [];
  const r = await esbuild.build({
    stdin: { contents, resolveDir: ROOT, loader: 'js' },
    bundle: true,
    platform: 'browser',
    format: 'esm',
    write: false,
    logLevel: 'silent',
    plugins: [
      {
        name: 'no-node',
        setup(b) {
          // Any `node:` import fails; so does a bare builtin from efftrain's own files. (tfjs's emscripten glue
          // has environment-guarded `require('fs')`s that browser bundlers stub; those are tfjs's, not ours.)
          b.onResolve({ filter: /^node:|^(fs|path|os|worker_threads|child_process|url)$/ }, (a) => {
            if (a.path.startsWith('node:') || !a.importer.includes('node_modules')) nodeImports.push(`${a.path} (from ${a.importer})`);
            return { path: a.path, external: true };
          });
        },
      },
    ],
  });
  assert.deepEqual(nodeImports, [], 'browser bundle reaches Node-only modules');
  assert.equal(r.errors.length, 0);
  assert.ok(r.outputFiles[0].text.length > 100_000, 'the bundle contains the library');
});

test('npm pack tarball installs into a project with its own tfjs; every entry imports; a custom layer round-trips through the user’s tf', () => {
  const dir = tempDir('efftrain-pack-');
  const pack = spawnSync('npm', ['pack', '--pack-destination', dir, '--json', '--ignore-scripts'], { cwd: ROOT, encoding: 'utf8' });
  assert.equal(pack.status, 0, pack.stderr);
  const tarball = join(dir, (JSON.parse(pack.stdout) as { filename: string }[])[0].filename);
  const app = join(dir, 'app');
  const nm = join(app, 'node_modules');
  mkdirSync(join(nm, pkg.name), { recursive: true });
  assert.equal(spawnSync('tar', ['-xzf', tarball, '-C', join(nm, pkg.name), '--strip-components=1']).status, 0);
  // The user's project brings its own tfjs (and efftrain's small dependencies); nothing is resolved from the
  // repository except through these links, so efftrain must use the project's tf.
  for (const dep of ['@tensorflow', '@stdlib', 'zod', 'commander', 'long', 'seedrandom']) {
    try {
      symlinkSync(join(ROOT, 'node_modules', dep), join(nm, dep), 'dir');
    } catch {
      // not every transitive package exists in every layout
    }
  }
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', type: 'module', private: true }));
  const entries = Object.keys(pkg.exports).filter((k) => k !== './package.json').map((k) => (k === '.' ? pkg.name : `${pkg.name}/${k.slice(2)}`));
  writeFileSync(
    join(app, 'main.js'),
    `import * as tf from '@tensorflow/tfjs';
const names = ${JSON.stringify(entries)};
for (const n of names) {
  const m = await import(n);
  if (Object.keys(m).length === 0) throw new Error(n + ' exports nothing');
}
const { initEngine } = await import('efftrain');
const { ShiftDense } = await import('efftrain/methods/s3');
await initEngine({ backend: 'cpu' });
const model = tf.sequential();
model.add(tf.layers.dense({ inputShape: [4], units: 6 }));
model.add(new ShiftDense({ units: 3, parameterization: 's3', bits: 3, seed: 1 }));
const x = tf.tensor2d([[1, 2, 3, 4]]);
const before = Array.from(model.predict(x).dataSync());
let saved;
await model.save(tf.io.withSaveHandler(async (a) => { saved = a; return { modelArtifactsInfo: { dateSaved: new Date(0), modelTopologyType: 'JSON' } }; }));
const back = await tf.loadLayersModel(tf.io.fromMemory(saved));
const after = Array.from(back.predict(x).dataSync());
if (back.layers[1].getClassName() !== 'ShiftDense') throw new Error('custom layer not restored');
if (JSON.stringify(before) !== JSON.stringify(after)) throw new Error('outputs differ: ' + before + ' vs ' + after);
console.log('ok ' + names.length);
`,
  );
  const r = spawnSync(process.execPath, ['main.js'], { cwd: app, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`ok ${entries.length}`));
  const installed = JSON.parse(readFileSync(join(nm, pkg.name, 'package.json'), 'utf8')) as { dependencies: Record<string, string>; peerDependencies: Record<string, string> };
  assert.deepEqual(Object.keys(installed.dependencies).filter((d) => d.startsWith('@tensorflow/') || d === 'vega-datasets' || d.includes('moby')), [], 'no tfjs or dataset package among the dependencies');
  assert.match(installed.peerDependencies['@tensorflow/tfjs'], /^\^4\./);
  assert.ok(!('bullmq' in installed.dependencies) && !('ioredis' in installed.dependencies), 'the job queue is an optional peer');
  // The CLI works without the optional queue packages, and says how to get them when a sweep needs them.
  const bin = join(nm, pkg.name, 'dist', 'cli', 'main.js');
  const list = spawnSync(process.execPath, [bin, 'list'], { cwd: app, encoding: 'utf8' });
  assert.equal(list.status, 0, list.stderr);
  assert.match(list.stdout, /fashion-baseline/);
  const sweep = spawnSync(process.execPath, [bin, 'sweep', 'status', '--queue', 'redis://127.0.0.1:9'], { cwd: app, encoding: 'utf8' });
  assert.equal(sweep.status, 2, sweep.stderr);
  const peers = (pkg as unknown as { peerDependencies: Record<string, string> }).peerDependencies;
  assert.ok(sweep.stderr.includes(`need the optional packages bullmq and ioredis: npm install bullmq@${peers.bullmq} ioredis@${peers.ioredis}`), sweep.stderr);
});
