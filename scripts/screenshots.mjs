#!/usr/bin/env node
// Screenshots of the dashboard's pages for the README: node scripts/screenshots.mjs <runsDir> [outDir=docs/img]
// Starts `efftrain serve` on <runsDir> (needs `npm run build`), drives Debian's Chromium with playwright-core
// (EFFTRAIN_CHROMIUM overrides /usr/bin/chromium), and writes dashboard-runs.png, dashboard-run.png (the newest
// finished run), dashboard-compare.png (the two newest finished runs of one experiment, when there are two) and
// playground.png, and handwriting.png when a run folder holds a recognizer.json (EFFTRAIN_SCREENSHOT_INK: strokes
// to write on it, JSON).
import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { startDashboard } from '../dist/serve/server.js';

const [runsDir, outDir = 'docs/img'] = process.argv.slice(2);
if (!runsDir) {
  process.stderr.write('usage: node scripts/screenshots.mjs <runsDir> [outDir]\n');
  process.exit(2);
}
mkdirSync(outDir, { recursive: true });
const dash = await startDashboard({ runsDir, port: 0 });
const browser = await chromium.launch({ executablePath: process.env.EFFTRAIN_CHROMIUM ?? '/usr/bin/chromium' });
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
  const snap = async (path, ready, file) => {
    await page.goto(dash.url + path);
    await page.waitForSelector(ready, { timeout: 180_000 });
    await page.waitForTimeout(300);
    await page.screenshot({ path: join(outDir, file), fullPage: true });
    process.stdout.write(join(outDir, file) + '\n');
  };
  const runs = await (await fetch(dash.url + '/api/runs')).json();
  await snap('/', 'main[data-ready="list"]', 'dashboard-runs.png');
  // The finished run with the most methods (its page has paired differences), newest first among equals.
  const done = runs.filter((r) => r.status === 'done').sort((a, b) => b.methods.length - a.methods.length);
  const href = (id) => id.split('/').map(encodeURIComponent).join('/');
  if (done[0]) await snap('/run/' + href(done[0].id), 'main[data-ready="run"]', 'dashboard-run.png');
  const pair = done.filter((r) => r.experiment === done[0]?.experiment).slice(0, 2);
  if (pair.length === 2) await snap(`/compare?run=${encodeURIComponent(pair[0].id)}&run=${encodeURIComponent(pair[1].id)}`, 'main[data-ready="compare"]', 'dashboard-compare.png');
  await snap('/playground', '#state[data-state="done"]', 'playground.png');
  const recognizers = await (await fetch(dash.url + '/api/recognizers')).json();
  if (recognizers.length) {
    // Writes the word "time" by mouse in a cursive style (a few strokes of a fixed path).
    await page.goto(dash.url + '/handwriting');
    await page.waitForSelector('#state[data-state="ready"]');
    const ink = JSON.parse(process.env.EFFTRAIN_SCREENSHOT_INK ?? 'null');
    if (ink) {
      const box = await page.locator('#pad').boundingBox();
      const xs = ink.flat().map((p) => p[0]);
      const ys = ink.flat().map((p) => p[1]);
      const s = Math.min((box.width - 40) / (Math.max(...xs) - Math.min(...xs)), (box.height - 40) / (Math.max(...ys) - Math.min(...ys)));
      const at = (p) => [box.x + 20 + (p[0] - Math.min(...xs)) * s, box.y + 20 + (p[1] - Math.min(...ys)) * s];
      for (const stroke of ink) {
        await page.mouse.move(...at(stroke[0]));
        await page.mouse.down();
        for (const p of stroke.slice(1)) await page.mouse.move(...at(p));
        await page.mouse.up();
      }
    }
    await page.waitForTimeout(300);
    await page.screenshot({ path: join(outDir, 'handwriting.png') });
    process.stdout.write(join(outDir, 'handwriting.png') + '\n');
  }
} finally {
  await browser.close();
  await dash.close();
}
