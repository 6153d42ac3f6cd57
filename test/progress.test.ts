import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ProgressView } from '../src/experiments/progress.js';

function capture() {
  const lines: string[] = [];
  const out = { isTTY: false, write: (s: string) => void lines.push(s) } as unknown as NodeJS.WriteStream;
  return { lines, out };
}

test('progress lines (non-TTY): epoch lines carry the loss when there is one and never print "undefined"', () => {
  const { lines, out } = capture();
  const view = new ProgressView(2, out);
  view.update({ method: 'fp', seed: 1, epoch: 1, epochs: 3, loss: 0.51234, message: 'val_acc 0.8' });
  view.update({ method: 'fp', seed: 1, epoch: 3, epochs: 3, message: 'export check 1000/10000' });
  view.finishRun('fp', 1, 'val_acc 0.80');
  assert.equal(lines.length, 3);
  assert.match(lines[0], /^\[fp seed 1\] epoch 1\/3 loss 0\.5123 val_acc 0\.8 \(\d+\.\ds\)\n$/);
  assert.match(lines[1], /^\[fp seed 1\] epoch 3\/3 export check 1000\/10000 \(\d+\.\ds\)\n$/);
  assert.equal(lines[2], '[fp seed 1] done: val_acc 0.80  (1/2)\n');
  assert.ok(!lines.join('').includes('undefined'));
});
