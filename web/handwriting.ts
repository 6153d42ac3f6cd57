/**
 * /handwriting: write with mouse, pen or finger; the Newton recognizer saved by the newton-handwriting experiment
 * (`<run>/runs/<method>-seed<seed>/recognizer.json`, listed by /api/recognizers) shows its top word hypotheses
 * after every stroke. Ink is what the recognizer reads: strokes of [x, y] points in writing order, y down.
 */
import { Recognizer } from '../src/methods/newton/recognizer.js';
import type { SavedModel } from '../src/serve/runs.js';

type Ink = [number, number][][];

declare global {
  interface Window {
    /** The ink as the recognizer read it and its hypotheses, for scripts and the browser test. */
    efftrainHandwriting?: { ink: Ink; hypotheses: { text: string; score: number }[] };
  }
}
const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const pad = $<HTMLCanvasElement>('pad');
const ctx = pad.getContext('2d')!;
const state = $('state');
const setState = (s: string, text: string) => ((state.dataset.state = s), (state.textContent = text));
let ink: Ink = [];
let current: [number, number][] | null = null;
let rec: Recognizer | null = null;

function redraw(): void {
  ctx.clearRect(0, 0, pad.width, pad.height);
  ctx.strokeStyle = '#d0d7de';
  ctx.beginPath();
  ctx.moveTo(0, pad.height * 0.7);
  ctx.lineTo(pad.width, pad.height * 0.7);
  ctx.stroke();
  ctx.strokeStyle = '#1b1f24';
  ctx.lineWidth = 3;
  ctx.lineCap = ctx.lineJoin = 'round';
  for (const s of current ? [...ink, current] : ink) {
    ctx.beginPath();
    s.forEach(([x, y], i) => (i ? ctx.lineTo(x, y) : ctx.moveTo(x, y)));
    if (s.length === 1) ctx.lineTo(s[0][0] + 0.1, s[0][1]);
    ctx.stroke();
  }
}

function recognize(): void {
  const list = $('hyps');
  if (!rec || !ink.length) return void list.replaceChildren();
  const t0 = performance.now();
  const hyps = rec.recognize(ink).slice(0, 5);
  window.efftrainHandwriting = { ink: ink.map((s) => s.map((p) => [p[0], p[1]] as [number, number])), hypotheses: hyps.map((h) => ({ text: h.text, score: h.score })) };
  list.replaceChildren(
    ...hyps.map((h) => {
      const li = document.createElement('li');
      li.textContent = `${h.text}  (${h.score.toFixed(2)}${h.inDictionary ? '' : ', not in dictionary'})`;
      li.dataset.word = h.text;
      return li;
    }),
  );
  setState('ready', `${ink.length} stroke${ink.length > 1 ? 's' : ''}, recognised in ${(performance.now() - t0).toFixed(0)} ms`);
}

const point = (e: PointerEvent): [number, number] => {
  const r = pad.getBoundingClientRect();
  return [((e.clientX - r.left) * pad.width) / r.width, ((e.clientY - r.top) * pad.height) / r.height];
};
pad.addEventListener('pointerdown', (e) => {
  pad.setPointerCapture(e.pointerId);
  current = [point(e)];
  redraw();
});
pad.addEventListener('pointermove', (e) => {
  if (!current) return;
  for (const c of e.getCoalescedEvents?.() ?? [e]) current.push(point(c));
  redraw();
});
const end = () => {
  if (!current) return;
  ink.push(current);
  current = null;
  redraw();
  recognize();
};
pad.addEventListener('pointerup', end);
pad.addEventListener('pointercancel', end);
$('clear').addEventListener('click', () => ((ink = []), redraw(), recognize()));

async function load(path: string): Promise<void> {
  setState('loading', `loading ${path}…`);
  const res = await fetch('/runs/' + path.split('/').map(encodeURIComponent).join('/'));
  if (!res.ok) throw new Error(`${path}: HTTP ${res.status}`);
  rec = Recognizer.fromJSON(await res.json(), path);
  setState('ready', `model ${path}: ${[...rec.classes].length} classes, ${rec.dictionaryEntries.length} dictionary words`);
  recognize();
}

async function start(): Promise<void> {
  redraw();
  const models = (await (await fetch('/api/recognizers')).json()) as SavedModel[];
  if (!models.length) return void setState('error', 'no recognizer.json under the served folder: train one with `efftrain run newton-handwriting --quick --out <folder>/newton`');
  const sel = $<HTMLSelectElement>('model');
  for (const m of models) sel.append(new Option(`${m.run} · ${m.name}`, m.path));
  const wanted = new URLSearchParams(location.search).get('model');
  sel.value = wanted && models.some((m) => m.path === wanted) ? wanted : (models.find((m) => m.name.startsWith('all-')) ?? models[0]).path;
  sel.addEventListener('change', () => void load(sel.value).catch((e) => setState('error', (e as Error).message)));
  await load(sel.value);
}

start().catch((e) => setState('error', `error: ${(e as Error).message}`));
