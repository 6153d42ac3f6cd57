/**
 * /playground: trains efftrain's shift-network + SuperLoss demo on tfjs's wasm backend in the page and plots the
 * loss as it goes. `?seed=&steps=&lambda=` start a run at load; the finished losses are left on
 * `window.efftrainPlayground` for scripts (the browser test compares them with Node's).
 */
import * as tf from '@tensorflow/tfjs';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { applyWasmPatches } from '../src/index.js';
import { trainShiftSuperLoss, type ShiftSuperLossResult } from '../src/demos/shift-superloss.js';
import { CurveChart, PALETTE } from './charts.js';

declare global {
  interface Window {
    efftrainPlayground?: { seed: number; steps: number; lambda: number; losses: number[]; cleanAccuracy: number; backend: string };
  }
}

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const state = $('state');
const setState = (s: string, text: string) => ((state.dataset.state = s), (state.textContent = text));

function drawField(canvas: HTMLCanvasElement, r: ShiftSuperLossResult): void {
  const ctx = canvas.getContext('2d')!;
  const cell = canvas.width / r.grid;
  for (let i = 0; i < r.grid * r.grid; i++) {
    ctx.fillStyle = PALETTE[r.gridClasses[i]!]! + '40';
    ctx.fillRect((i % r.grid) * cell, Math.floor(i / r.grid) * cell, cell, cell);
  }
  const toPx = (v: number, flip: boolean) => ((flip ? 1.1 - v : v + 1.1) / 2.2) * canvas.width;
  for (let k = 0; k < r.data.n; k++) {
    ctx.fillStyle = PALETTE[r.data.y[k]!]!;
    ctx.beginPath();
    ctx.arc(toPx(r.data.x[2 * k]!, false), toPx(r.data.x[2 * k + 1]!, true), 2.5, 0, 2 * Math.PI);
    ctx.fill();
  }
}

async function start(): Promise<void> {
  setWasmPaths('/wasm/');
  if (!(await tf.setBackend('wasm'))) throw new Error('the tfjs wasm backend did not start');
  await tf.ready();
  applyWasmPatches();
  const chart = new CurveChart($('loss'), 'training loss (SuperLoss + S3 regulariser)', 'step');
  const params = new URLSearchParams(location.search);
  const form = $<HTMLFormElement>('form');
  const read = (id: string, fallback: number) => {
    const v = Number($<HTMLInputElement>(id).value);
    return Number.isFinite(v) ? v : fallback;
  };
  for (const k of ['seed', 'steps', 'lambda']) if (params.has(k)) $<HTMLInputElement>(k).value = params.get(k)!;
  let busy = false;
  const train = async () => {
    if (busy) return;
    busy = true;
    $<HTMLButtonElement>('train').disabled = true;
    const seed = Math.trunc(read('seed', 1));
    const steps = Math.max(1, Math.min(5000, Math.trunc(read('steps', 150))));
    const lambda = read('lambda', 1);
    const losses: number[] = [];
    const t0 = performance.now();
    const show = () => chart.update([{ label: `seed ${seed}`, x: losses.map((_, i) => i), mean: losses, lo: losses, hi: losses, n: losses.map(() => 1) }]);
    try {
      setState('training', `training on ${tf.getBackend()}…`);
      const r = await trainShiftSuperLoss({
        seed,
        steps,
        lambda,
        onStep: async (s, loss) => {
          losses.push(loss);
          if (s % 10 === 9 || s === steps - 1) {
            show();
            setState('training', `step ${s + 1}/${steps}, loss ${loss.toFixed(4)}`);
            await new Promise((res) => setTimeout(res, 0));
          }
        },
      });
      show();
      drawField($<HTMLCanvasElement>('field'), r);
      const simd = tf.env().getBool('WASM_HAS_SIMD_SUPPORT') ? 'SIMD' : 'no SIMD';
      window.efftrainPlayground = { seed, steps, lambda, losses: r.losses, cleanAccuracy: r.cleanAccuracy, backend: tf.getBackend() };
      setState('done', `done: ${steps} steps in ${((performance.now() - t0) / 1000).toFixed(1)} s on ${tf.getBackend()} (${simd}); accuracy on the true labels ${(100 * r.cleanAccuracy).toFixed(1)}%`);
    } catch (e) {
      setState('error', `error: ${(e as Error).message}`);
    } finally {
      busy = false;
      $<HTMLButtonElement>('train').disabled = false;
    }
  };
  form.addEventListener('submit', (ev) => (ev.preventDefault(), void train()));
  await train();
}

start().catch((e) => setState('error', `error: ${(e as Error).message}`));
