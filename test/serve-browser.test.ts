/**
 * The dashboard and the playground in a real browser: playwright-core driving the system's Chromium
 * (`/usr/bin/chromium`, from apt; `.ci/run` installs it — no browser is downloaded). One browser for the file.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { chromium, type Browser, type Page } from 'playwright-core';
import { initEngine } from '../src/engine/backend.js';
import { trainShiftSuperLoss } from '../src/demos/shift-superloss.js';
import { startDashboard, type DashboardServer } from '../src/serve/server.js';
import { makeRunsFixture } from './helpers/runs-fixture.js';
import { Recognizer } from '../src/methods/newton/recognizer.js';
import { hersheyFont } from '../src/data/strokes.js';
import { loadHersheyTextJson } from '../src/data/strokes-node.js';
import { HANDWRITING_CLASSES, makeWriter, renderWord } from '../src/data/handwriting.js';
import { Rng } from '../src/engine/rng.js';

const CHROMIUM = process.env.EFFTRAIN_CHROMIUM ?? '/usr/bin/chromium';
const skip = existsSync(CHROMIUM) ? false : `no Chromium at ${CHROMIUM} (apt-get install chromium, or set EFFTRAIN_CHROMIUM)`;

const fx = makeRunsFixture();
let dash: DashboardServer;
let browser: Browser;

before(async () => {
  if (skip) return;
  dash = await startDashboard({ runsDir: fx.root, port: 0 });
  // Debian's Chromium runs headless as root without --no-sandbox when driven by playwright-core.
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true });
});
after(async () => {
  await browser?.close();
  await dash?.close();
});

async function open(path: string): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
  (page as Page & { errors: string[] }).errors = errors;
  await page.goto(dash.url + path);
  return page;
}
const pageErrors = (p: Page) => (p as Page & { errors: string[] }).errors;
/** Counts non-blank pixels of every canvas under `sel` (uPlot draws on canvas). Runs in the page. */
const inkedPixels = (page: Page, sel: string) =>
  page.evaluate(`[...document.querySelectorAll(${JSON.stringify(sel)})].map((c) => {
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let n = 0;
    for (let i = 3; i < d.length; i += 4) if (d[i] !== 0) n++;
    return n;
  })`) as Promise<number[]>;
const attrs = (page: Page, sel: string, names: string[]) => page.locator(sel).evaluateAll((els, ns) => els.map((e) => ns.map((n) => e.getAttribute(n))), names);

test('the run list shows every run with its status; a run page renders one chart per metric with one series per method', { skip }, async () => {
  const list = await open('/');
  await list.waitForSelector('main[data-ready="list"]');
  assert.equal(await list.locator('table.runs tbody tr').count(), Object.keys(fx.ids).length);
  const statuses = await list.locator('table.runs .badge').evaluateAll((els) => els.map((e) => e.getAttribute('data-status')).sort());
  assert.deepEqual(statuses, ['done', 'done', 'error', 'failed', 'interrupted', 'running']);
  await list.close();

  const run = await open('/run/' + fx.ids.done);
  await run.waitForSelector('main[data-ready="run"]');
  const charts = await attrs(run, '#curves .chart', ['data-metric', 'data-series', 'data-points']);
  assert.deepEqual(charts, [
    ['train_loss', '2', '4'],
    ['test_acc', '2', '4'],
  ]);
  for (const n of await inkedPixels(run, '#curves canvas')) assert.ok(n > 500, `a chart canvas has ink (${n} pixels)`);
  assert.match(await run.locator('table.paired').innerText(), /cnn\s+test_acc\s+0\.0500\s+\[0\.0252, 0\.0748\]\s+3/);
  // report.md: raw HTML shown as text, images pointed into the run folder.
  assert.match(await run.locator('.report').innerText(), /Some <b>raw html<\/b> text/);
  assert.equal(await run.locator('.report img').getAttribute('src'), `/runs/${fx.ids.done}/charts/summary.svg`);
  assert.deepEqual(pageErrors(run), []);
  await run.close();

  const bad = await open('/run/' + fx.ids.broken);
  await bad.waitForSelector('main[data-ready="run"]');
  assert.match(await bad.locator('.problems').innerText(), /metrics\.jsonl:2: invalid JSON/);
  await bad.close();
});

test('a live run updates within 2 s of a line appended to metrics.jsonl, and turns done when results.json appears', { skip }, async () => {
  const page = await open('/run/' + fx.ids.live);
  await page.waitForSelector('main[data-ready="run"]');
  const chart = page.locator('#curves .chart[data-metric="test_acc"]');
  assert.equal(await chart.getAttribute('data-points'), '2');
  await page.waitForTimeout(300); // the event stream is open
  const live = join(fx.root, fx.ids.live);
  appendFileSync(join(live, 'metrics.jsonl'), JSON.stringify({ method: 'cnn', seed: 1, epoch: 3, train_loss: 0.3, test_acc: 0.75 }) + '\n');
  await page.waitForSelector('#curves .chart[data-metric="test_acc"][data-points="3"]', { timeout: 2000 });
  assert.match(await page.locator('h1 .badge').innerText(), /running · epoch 3/);
  writeFileSync(join(live, 'results.json'), JSON.stringify({ experiment: 'fashion-baseline', quick: true, seeds: [1, 2], methods: ['mlp', 'cnn'], runs: [], summary: {} }));
  await page.waitForSelector('h1 .badge[data-status="done"]', { timeout: 3000 });
  await page.close();
});

test('a `..` path gets 404 in the browser too', { skip }, async () => {
  const page = await browser.newPage();
  for (const p of ['/runs/..%2fsecret.txt', '/runs/escape/secret.txt', `/runs/${fx.ids.done}/%2e%2e/%2e%2e/secret.txt`]) {
    const res = await page.goto(dash.url + p);
    assert.equal(res?.status(), 404, p);
    assert.ok(!(await page.content()).includes('TOP-SECRET'));
  }
  await page.close();
});

test('compare overlays two runs of one experiment: one series per (method, run)', { skip }, async () => {
  const page = await open(`/compare?run=${fx.ids.done}&run=${fx.ids.done2}`);
  await page.waitForSelector('main[data-ready="compare"]');
  const series = await attrs(page, '#curves .chart', ['data-series']);
  assert.deepEqual(series, [['4'], ['4']]);
  assert.equal(await page.locator('table.summary tbody tr').count(), 2, 'test_acc of mlp and of cnn');
  await page.close();
});

test('the playground trains on wasm in the page, and its loss curve equals Node’s on wasm (1e-5)', { skip }, async (t) => {
  const seed = 3;
  const steps = 40;
  const page = await open(`/playground?seed=${seed}&steps=${steps}`);
  await page.waitForSelector('#state[data-state="done"], #state[data-state="error"]', { timeout: 120_000 });
  assert.equal(await page.locator('#state').getAttribute('data-state'), 'done', await page.locator('#state').innerText());
  const inPage = (await page.evaluate('window.efftrainPlayground')) as { losses: number[]; backend: string; seed: number; steps: number };
  assert.equal(inPage.backend, 'wasm');
  assert.equal(inPage.losses.length, steps);
  assert.deepEqual(pageErrors(page), []);
  await page.close();

  await initEngine({ backend: 'wasm' });
  const before = tf.memory().numTensors;
  const node = await trainShiftSuperLoss({ seed, steps });
  assert.equal(tf.memory().numTensors, before, 'the demo disposes every tensor it made');
  const worst = Math.max(...node.losses.map((l, i) => Math.abs(l - inPage.losses[i])));
  t.diagnostic(`largest |Δloss| page vs Node over ${steps} steps: ${worst}`);
  assert.ok(worst <= 1e-5, `largest |Δloss| between the page and Node: ${worst}`);
  assert.ok(node.losses[steps - 1] < node.losses[0] - 0.2, 'the loss goes down');
});

test('the handwriting page: a word drawn with mouse events comes out as the top hypothesis, as in Node', { skip }, async () => {
  // The recognizer the newton-handwriting experiment saved (quick run, shipped in models/newton), served from a run folder.
  const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
  const modelDir = join(fx.root, 'newton-quick', 'runs', 'all-seed1');
  mkdirSync(modelDir, { recursive: true });
  writeFileSync(join(fx.root, 'newton-quick', 'config.json'), JSON.stringify({ methods: ['all'], seeds: [1] }));
  copyFileSync(join(repo, 'models', 'newton', 'recognizer.json'), join(modelDir, 'recognizer.json'));
  const rec = Recognizer.fromJSON(JSON.parse(readFileSync(join(modelDir, 'recognizer.json'), 'utf8')));
  // A fixture word written by a test-set writer (a font the recognizer never saw in training).
  const glyphs = hersheyFont(loadHersheyTextJson(), 'cursive', HANDWRITING_CLASSES);
  const word = renderWord('time', makeWriter('fixture', 'cursive', glyphs, new Rng(3)), new Rng(4));
  assert.equal(rec.recognize(word.ink)[0].text, 'time', 'the fixture is a word the recognizer reads');

  const page = await open('/handwriting');
  await page.waitForSelector('#state[data-state="ready"], #state[data-state="error"]');
  assert.equal(await page.locator('#state').getAttribute('data-state'), 'ready', await page.locator('#state').innerText());
  const box = (await page.locator('#pad').boundingBox())!;
  const xs = word.ink.flat().map((p) => p[0]);
  const ys = word.ink.flat().map((p) => p[1]);
  const scale = Math.min((box.width - 40) / (Math.max(...xs) - Math.min(...xs)), (box.height - 40) / (Math.max(...ys) - Math.min(...ys)));
  const at = (p: [number, number]) => [box.x + 20 + (p[0] - Math.min(...xs)) * scale, box.y + 20 + (p[1] - Math.min(...ys)) * scale] as const;
  for (const stroke of word.ink) {
    await page.mouse.move(...at(stroke[0]));
    await page.mouse.down();
    for (const p of stroke.slice(1)) await page.mouse.move(...at(p));
    await page.mouse.up();
  }
  await page.waitForFunction(`window.efftrainHandwriting && window.efftrainHandwriting.ink.length === ${word.ink.length}`);
  const seen = (await page.evaluate('window.efftrainHandwriting')) as { ink: [number, number][][]; hypotheses: { text: string }[] };
  assert.equal(await page.locator('#hyps li').first().getAttribute('data-word'), 'time');
  assert.equal(seen.hypotheses[0].text, rec.recognize(seen.ink)[0].text, 'the page and Node agree on the same ink');
  assert.deepEqual(pageErrors(page), []);
  await page.close();
});
