import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runExperiment, runFolder } from '../src/experiments/runner.js';
import { newtonArm } from '../src/experiments/newton-handwriting/index.js';
import { hersheyFont } from '../src/data/strokes.js';
import { loadHersheyTextJson } from '../src/data/strokes-node.js';
import { HANDWRITING_CLASSES, makeWriter, renderWord } from '../src/data/handwriting.js';
import { Rng } from '../src/engine/rng.js';
import { loadRecognizerFile } from '../src/methods/newton/io-node.js';
import { loadRecognizer } from '../src/methods/newton/recognizer.js';
import type { Results } from '../src/experiments/types.js';
import { tempDir } from './helpers/tmp.js';

const CLI = join(dirname(fileURLToPath(import.meta.url)), '..', 'src', 'cli', 'main.js');
const cli = (args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, CI: 'true' } });

test('newton arms switch exactly their innovation', () => {
  assert.deepEqual(newtonArm('baseline'), { normouterr: false, freqbal: false, erremph: false, negative: false, warp: false, anneal: true });
  assert.equal(newtonArm('+negative').negative, true);
  assert.equal(Object.values(newtonArm('+warp')).filter(Boolean).length, 2); // warp + anneal
  assert.equal(newtonArm('all-fixed-lr').anneal, false);
  assert.throws(() => newtonArm('+magic'), /unknown method/);
});

test('renderWord places glyph stroke runs in writing order with their labels', () => {
  const glyphs = hersheyFont(loadHersheyTextJson(), 'futural', HANDWRITING_CLASSES);
  const w = makeWriter('futural#0', 'futural', glyphs, new Rng(1));
  const r = renderWord('Ab1', w, new Rng(2));
  assert.deepEqual(r.glyphs.map((g) => HANDWRITING_CLASSES[g.label]), ['A', 'b', '1']);
  assert.equal(r.glyphs[0].from, 0);
  assert.equal(r.glyphs[2].to, r.ink.length);
  assert.deepEqual(renderWord('Ab1', w, new Rng(2)), r);
  // glyphs go left to right
  const cx = r.glyphs.map((g) => r.ink.slice(g.from, g.to).flat().reduce((s, p) => s + p[0], 0) / r.ink.slice(g.from, g.to).flat().length);
  assert.ok(cx[0] < cx[1] && cx[1] < cx[2]);
});

test('newton-handwriting end to end: tiny run, saved recognizer, `efftrain recognize`, bad input', async () => {
  const outDir = join(tempDir('efftrain-newton-'), 'run');
  const { results } = await runExperiment({
    experiment: 'newton-handwriting',
    quick: false,
    sets: ['trainWords=40', 'evalWords=8', 'epochs=2', 'patternsPerEpoch=256', 'writersPerFont=1', 'dictionarySize=300', 'imageUnits=8', 'strokeUnits=4', 'hidden=8'],
    flags: { methods: ['baseline', 'all'], seeds: [1] },
    outDir,
    workers: 1,
    quiet: true,
  });
  const onDisk = JSON.parse(readFileSync(join(outDir, 'results.json'), 'utf8')) as Results;
  assert.deepEqual(onDisk.methods, ['baseline', 'all']);
  for (const r of results.runs) {
    for (const k of ['char_err', 'top3_err', 'word_err', 'word_err_nodict', 'seg_err', 'reliability']) assert.ok(r.metrics[k] >= 0 && r.metrics[k] <= 1, `${r.method} ${k} = ${r.metrics[k]}`);
    assert.ok(r.metrics.top3_err <= r.metrics.char_err);
  }
  const report = readFileSync(join(outDir, 'report.md'), 'utf8');
  assert.match(report, /Paired differences against `baseline`/);
  assert.ok(existsSync(join(outDir, 'charts', 'newton-reliability.svg')));
  const modelDir = runFolder(outDir, 'all', 1);
  const rec = loadRecognizerFile(modelDir);
  assert.ok(rec.normOutErrA < 1 && rec.dictionary && rec.dictionary.size === 300);
  // The browser loader reads the same file through fetch.
  const viaFetch = await loadRecognizer('file://recognizer.json', (async () => new Response(readFileSync(join(modelDir, 'recognizer.json')))) as unknown as typeof fetch);
  const glyphs = hersheyFont(loadHersheyTextJson(), 'timesi', HANDWRITING_CLASSES);
  const word = renderWord('the', makeWriter('t', 'timesi', glyphs, new Rng(3)), new Rng(4));
  assert.deepEqual(viaFetch.recognize(word.ink), rec.recognize(word.ink));
  const inkFile = join(outDir, 'ink.json');
  writeFileSync(inkFile, JSON.stringify(word.ink));
  const ok = cli(['recognize', '--model', modelDir, inkFile, '--top', '3']);
  assert.equal(ok.status, 0, ok.stderr);
  const lines = ok.stdout.trim().split('\n');
  assert.ok(lines.length >= 1 && lines.length <= 3);
  assert.match(lines[0], /^\S+\t-?\d+\.\d{3}\t(dict|ood)$/);
  const bad = join(outDir, 'bad.json');
  writeFileSync(bad, JSON.stringify([[[0, 0], [1, 1]], [[2, 'x']]]));
  const r = cli(['recognize', '--model', modelDir, bad]);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /bad\.json: stroke 1, point 0: expected \[x, y\]/);
  const noModel = cli(['recognize', '--model', join(outDir, 'nothing'), inkFile]);
  assert.equal(noModel.status, 2);
  assert.match(noModel.stderr, /no recognizer\.json found/);
  const dup = cli(['run', 'newton-handwriting', '--set', 'testFonts=["futural"]', '--out', join(outDir, 'dup')]);
  assert.equal(dup.status, 2);
  assert.match(dup.stderr, /font "futural" is also in trainFonts/);
  assert.ok(!existsSync(join(outDir, 'dup', 'results.json')));
});
