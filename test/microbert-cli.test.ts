import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseConllu } from '../src/data/conllu.js';
import { readConllu } from '../src/node/microbert-files.js';
import { writeSyntheticTreebank } from './helpers/treebank.js';
import { tempDir } from './helpers/tmp.js';

const CLI = join(dirname(fileURLToPath(import.meta.url)), '..', 'src', 'cli', 'main.js');
const cli = (args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, CI: 'true' } });

const TINY = ['vocabSize=60', 'pretrainSteps=12', 'evalEvery=6', 'warmupSteps=2', 'probeSteps=12', 'probeEvalEvery=6', 'dModel=16', 'nHeads=2', 'dFf=32', 'nLayers=1', 'arcDim=16', 'labelDim=8', 'batchSize=8'].flatMap((s) => ['--set', s]);

test('efftrain run microbert on a synthetic treebank, then efftrain parse writes valid CoNLL-U trees', () => {
  const tb = writeSyntheticTreebank({ train: 40, dev: 12, test: 12 });
  const out = join(tempDir('efftrain-mbrun-'), 'run');
  const r = cli(['run', 'microbert', '--treebank', tb, '--methods', 'none,mxp', '--seeds', '1', '--workers', '1', '--out', out, '--quiet', ...TINY]);
  assert.equal(r.status, 0, r.stderr);
  const res = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8'));
  for (const m of ['none', 'mxp']) {
    const s = res.summary[m];
    for (const k of ['las', 'uas', 'upos_acc']) assert.ok(s[k].mean >= 0 && s[k].mean <= 1, `${m} ${k}`);
    assert.ok(s.las.mean <= s.uas.mean);
    assert.ok(s.params.mean > 0);
    assert.equal(s.leaked_tensors.mean, 0);
  }
  assert.ok(Number.isFinite(res.summary.mxp.val_ppl.mean) && Number.isFinite(res.summary.mxp.pretrain_tokens_per_s.mean));
  const rows = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(rows.filter((x) => x.method === 'mxp' && typeof x.val_ppl === 'number').length, 2);
  const report = readFileSync(join(out, 'report.md'), 'utf8');
  assert.match(report, /MXP ≤ MX|paired/i);
  assert.ok(existsSync(join(out, 'charts', 'val-ppl-vs-step.svg')));
  const model = join(out, 'runs', 'mxp-seed1', 'parser');
  assert.ok(existsSync(join(model, 'vocab.txt')) && existsSync(join(out, 'runs', 'mxp-seed1', 'pretrained', 'encoder', 'weights.safetensors')));

  // Parse the test file with its heads blanked out: output must be trees; comments, ranges and empty nodes kept.
  const testFile = join(tb, 'syn-ud-test.conllu');
  const blank = readFileSync(testFile, 'utf8')
    .split('\n')
    .map((l) => {
      const f = l.split('\t');
      if (f.length !== 10 || !/^\d+$/.test(f[0])) return l;
      f[6] = '_';
      f[7] = '_';
      return f.join('\t');
    })
    .join('\n');
  const inFile = join(tempDir('efftrain-mbparse-'), 'in.conllu');
  writeFileSync(inFile, blank);
  const predFile = join(dirname(inFile), 'pred.conllu');
  const p = cli(['parse', '--model', model, inFile, '--out', predFile]);
  assert.equal(p.status, 0, p.stderr);
  const pred = readConllu(predFile, { requireHeads: true });
  const gold = readConllu(testFile);
  assert.equal(pred.sentences.length, gold.sentences.length);
  pred.sentences.forEach((s, i) => {
    assert.deepEqual(s.comments, gold.sentences[i].comments);
    assert.deepEqual(s.rows.map((r) => r.kind), gold.sentences[i].rows.map((r) => r.kind));
    assert.deepEqual(s.words.map((w) => w.form), gold.sentences[i].words.map((w) => w.form));
  });
  // Stdout mode gives the same text.
  const p2 = cli(['parse', '--model', model, inFile]);
  assert.equal(p2.status, 0, p2.stderr);
  assert.equal(p2.stdout, readFileSync(predFile, 'utf8'));
  assert.doesNotThrow(() => parseConllu(p2.stdout, { requireHeads: true }));

  // Bad input: clear error with file and line, exit code 2, no output written.
  const bad = join(dirname(inFile), 'bad.conllu');
  writeFileSync(bad, '1\tx\tx\tX\t_\t_\t0\troot\t_\t_\n2\ty\ty\tX\t_\t_\t7\tdep\t_\t_\n\n');
  const badOut = join(dirname(inFile), 'bad-out.conllu');
  const e = cli(['parse', '--model', model, bad, '--out', badOut]);
  assert.equal(e.status, 2);
  assert.match(e.stderr, /bad\.conllu:2: HEAD 7 of word 2 is out of range/);
  assert.ok(!existsSync(badOut));
  const e2 = cli(['parse', '--model', join(out, 'nope'), inFile]);
  assert.equal(e2.status, 2);
  assert.match(e2.stderr, /microbert\.json: not found/);
  const e3 = cli(['run', 'microbert', '--treebank', join(tb, 'missing'), '--out', join(out, '..', 'x'), '--quiet']);
  assert.equal(e3.status, 2);
  assert.match(e3.stderr, /treebank directory not found/);
});

test('microbert --unlabeled: the text joins the MLM batches and the vocabulary; bad files stop the run before any output', () => {
  const tb = writeSyntheticTreebank({ train: 30, dev: 8, test: 8 });
  const d = tempDir('efftrain-mbunl-');
  const text = join(d, 'more.txt');
  // A word that never occurs in the treebank, frequent enough to become one wordpiece.
  writeFileSync(text, Array.from({ length: 40 }, (_, i) => `zorbax kat ${i % 2 ? 'vidas' : 'amas'} zorbax.`).join('\n') + '\n');
  const out = join(d, 'run');
  const r = cli(['run', 'microbert', '--treebank', tb, '--unlabeled', text, '--methods', 'm', '--seeds', '1', '--workers', '1', '--out', out, '--quiet', ...TINY]);
  assert.equal(r.status, 0, r.stderr);
  const res = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8'));
  assert.equal(res.runs[0].metrics.unlabeled_sentences, 40);
  assert.equal(res.runs[0].metrics.mlm_sequences, 30 + 40);
  assert.ok(res.metrics.diagnostics.includes('unlabeled_sentences'));
  const vocab = readFileSync(join(out, 'runs', 'm-seed1', 'pretrained', 'vocab.txt'), 'utf8').split('\n');
  assert.ok(vocab.includes('zorbax'), 'the vocabulary is trained on the unlabeled text too');
  assert.match(readFileSync(join(out, 'report.md'), 'utf8'), /MLM text = the train FORMs plus `more\.txt`/);
  // mlmTextFraction keeps a seeded half of the train sentences as MLM text (the unlabeled text stays whole);
  // labeledFraction a seeded share of the annotated sentences for the POS batches and the probe.
  const half = join(d, 'half');
  const h = cli(['run', 'microbert', '--treebank', tb, '--unlabeled', text, '--methods', 'mx', '--seeds', '1', '--workers', '1', '--out', half, '--quiet', ...TINY,
    '--set', 'mlmTextFraction=0.5', '--set', 'labeledFraction=0.2', '--set', 'saveModels=false']);
  assert.equal(h.status, 0, h.stderr);
  const hm = JSON.parse(readFileSync(join(half, 'results.json'), 'utf8')).runs[0].metrics;
  assert.equal(hm.mlm_sequences, 15 + 40);
  assert.equal(hm.labeled_sentences, 6);
  assert.match(readFileSync(join(half, 'report.md'), 'utf8'), /Annotation used: a seeded 20 % of the train sentences .* MLM text: a seeded 50 % of train/);
  const bad = join(d, 'bad.txt');
  writeFileSync(bad, Buffer.from([0x6b, 0x61, 0x74, 0x0a, 0xff, 0xfe, 0x0a]));
  for (const [file, msg] of [
    [join(d, 'missing.txt'), /missing\.txt: unlabeled text file not found/],
    [bad, /bad\.txt:2: not valid UTF-8/],
    [`${text},${join(tb, 'syn-ud-dev.conllu')}`, /syn-ud-dev\.conllu: is the treebank's dev or test split/],
  ] as const) {
    const o = join(d, `fail-${readdirSync(d).length}`);
    const e = cli(['run', 'microbert', '--treebank', tb, '--unlabeled', file, '--methods', 'm', '--seeds', '1', '--out', o, '--quiet', ...TINY]);
    assert.equal(e.status, 2, e.stderr);
    assert.match(e.stderr, msg);
    assert.ok(!existsSync(o), 'nothing written');
  }
});

test('microbert killed mid-pretraining and resumed with --resume ends with the same metrics and rows', async () => {
  const tb = writeSyntheticTreebank({ train: 40, dev: 8, test: 8 });
  const d = tempDir('efftrain-mbres-');
  const args = ['run', 'microbert', '--treebank', tb, '--methods', 'mx', '--seeds', '2', '--workers', '1', '--quiet', ...TINY,
    '--set', 'pretrainSteps=60', '--set', 'probeSteps=8', '--set', 'checkpointEverySteps=4', '--set', 'saveModels=false'];
  const ref = join(d, 'ref');
  assert.equal(cli([...args, '--out', ref]).status, 0);
  const killed = join(d, 'killed');
  const ckpt = join(killed, 'runs', 'mx-seed2', 'pretrain-checkpoint.safetensors');
  const child = spawn(process.execPath, [CLI, ...args, '--out', killed], { stdio: 'ignore' });
  const t0 = Date.now();
  await new Promise<void>((resolve, reject) => {
    const poll = setInterval(() => {
      const m = existsSync(ckpt) ? /\\"step\\":(\d+)/.exec(readFileSync(ckpt).subarray(0, 4096).toString('latin1')) : null;
      if (m && Number(m[1]) >= 8) {
        clearInterval(poll);
        child.kill('SIGKILL');
        resolve();
      } else if (Date.now() - t0 > 120000) {
        clearInterval(poll);
        reject(new Error('no checkpoint appeared'));
      }
    }, 5);
  });
  await new Promise((r) => child.on('exit', r));
  assert.ok(!existsSync(join(killed, 'results.json')), 'the killed run left no results.json');
  const resumed = cli([...args, '--out', killed, '--resume']);
  assert.equal(resumed.status, 0, resumed.stderr);
  const timing = new Set(['pretrain_tokens_per_s', 'pretrain_seconds', 'probe_seconds']);
  const metrics = (o: string) => Object.entries(JSON.parse(readFileSync(join(o, 'results.json'), 'utf8')).runs[0].metrics).filter(([k]) => !timing.has(k));
  assert.deepEqual(metrics(killed), metrics(ref));
  const rows = (o: string) => readFileSync(join(o, 'metrics.jsonl'), 'utf8');
  assert.equal(rows(killed), rows(ref), 'curves identical after resume');
});
