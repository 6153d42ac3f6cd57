/**
 * `efftrain export-shift <runDir|model> --out FILE`: writes a trained shift network (S3 / DeepShift-PS
 * layers, see src/methods/s3) in the compact `efftrain-shift` binary format (src/methods/s3/export.ts) and
 * prints its size against the float32 model.
 *
 * Sources:
 * - a saved tfjs model: a directory holding model.json (+ weights.bin), or the model.json path itself;
 * - a run directory written by `efftrain run` (e.g. of `s3-shift`): the model saved by one run,
 *   `<runDir>/runs/<method>-seed<seed>/model/`. `--method` / `--seed` pick it; by default the first run
 *   (in config.json's method × seed order) whose model contains shift layers.
 * `--verify N` additionally runs the multiplication-free engine on the first N test images of --data and
 * reports argmax agreement with the tfjs model (and, on the native engine path, whether its outputs equal
 * the TypeScript engine's bit for bit).
 */
import { Command, InvalidArgumentError } from 'commander';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { initEngine, type BackendChoice } from '../engine/backend.js';
import { backendOption } from './options.js';
import { UserError } from '../errors.js';
import { FASHION_MNIST_DIR, loadImageDataset } from '../data/image-dataset.js';
import { ShiftInferenceEngine, describeShiftModel, enginePredictions, float32InferenceBytes, packShiftModel, tfjsPredictions } from '../methods/s3/index.js';
import { loadLayersModel } from '../train/model-io.js';
import { writeFileAtomic } from '../util/fs.js';

/** A saved model found in a run directory. */
interface RunModel {
  method: string;
  seed: number;
  dir: string;
  hasShiftLayers: boolean;
}

const hasShift = (modelJson: string): boolean => /"class_name"\s*:\s*"Shift(Conv2D|Dense)"/.test(readFileSync(modelJson, 'utf8'));

/** Lists the saved run models of a run directory, in config.json method × seed order when available. */
export function listRunModels(runDir: string): RunModel[] {
  const runsDir = join(runDir, 'runs');
  if (!existsSync(runsDir)) return [];
  const found: RunModel[] = [];
  for (const name of readdirSync(runsDir)) {
    const m = /^(.*)-seed(-?\d+)$/.exec(name);
    const dir = join(runsDir, name, 'model');
    if (!m || !existsSync(join(dir, 'model.json'))) continue;
    found.push({ method: m[1], seed: Number(m[2]), dir, hasShiftLayers: hasShift(join(dir, 'model.json')) });
  }
  let methods: string[] = [];
  let seeds: number[] = [];
  try {
    const cfg = JSON.parse(readFileSync(join(runDir, 'config.json'), 'utf8')) as { methods?: string[]; seeds?: number[] };
    methods = cfg.methods ?? [];
    seeds = cfg.seeds ?? [];
  } catch {
    // no/invalid config.json: fall back to name order
  }
  const rank = (xs: unknown[], x: unknown) => {
    const i = xs.indexOf(x);
    return i < 0 ? xs.length : i;
  };
  return found.sort((a, b) => rank(methods, a.method) - rank(methods, b.method) || a.method.localeCompare(b.method) || rank(seeds, a.seed) - rank(seeds, b.seed) || a.seed - b.seed);
}

/** Resolves the model directory to export (see the module comment). */
export function resolveExportSource(path: string, opts: { method?: string; seed?: number }): { modelPath: string; label: string } {
  if (!existsSync(path)) throw new UserError(`${path}: not found`);
  if (statSync(path).isFile()) {
    if (!path.endsWith('.json')) throw new UserError(`${path}: expected a model.json, a model directory or a run directory`);
    return { modelPath: path, label: path };
  }
  if (existsSync(join(path, 'model.json'))) {
    if (opts.method !== undefined || opts.seed !== undefined) throw new UserError('--method/--seed apply to run directories only');
    return { modelPath: path, label: path };
  }
  const all = listRunModels(path);
  if (!all.length) throw new UserError(`${path}: neither a model directory (model.json) nor a run directory with saved models (runs/<method>-seed<seed>/model/model.json)`);
  let cands = all;
  if (opts.method !== undefined) cands = cands.filter((r) => r.method === opts.method);
  if (opts.seed !== undefined) cands = cands.filter((r) => r.seed === opts.seed);
  if (opts.method === undefined) cands = cands.filter((r) => r.hasShiftLayers);
  const avail = all.map((r) => `${r.method}/seed ${r.seed}${r.hasShiftLayers ? '' : ' (no shift layers)'}`).join(', ');
  if (!cands.length) throw new UserError(`${path}: no saved ${opts.method === undefined ? 'shift ' : ''}model matches${opts.method !== undefined ? ` --method ${opts.method}` : ''}${opts.seed !== undefined ? ` --seed ${opts.seed}` : ''} (available: ${avail})`);
  const c = cands[0];
  return { modelPath: c.dir, label: `${path} (${c.method}, seed ${c.seed})` };
}

function intArg(name: string, min: number) {
  return (v: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`${name} must be an integer ≥ ${min}`);
    return n;
  };
}

const kib = (b: number) => `${(b / 1024).toFixed(1)} KiB`;

/** Adds the `export-shift` verb to the CLI program. */
export function registerExportShiftCommand(program: Command): void {
  program
    .command('export-shift')
    .description('write a trained shift network (S3 / DeepShift-PS) in the compact efftrain-shift format and print its size vs float32')
    .argument('<source>', 'a run directory (efftrain run s3-shift …), a saved model directory (model.json) or a model.json')
    .requiredOption('--out <file>', 'output file (e.g. model.efsh)')
    .option('--method <name>', 'run directories: the method whose model to export (default: first method with shift layers)')
    .option('--seed <n>', 'run directories: the seed (default: first seed found)', intArg('--seed', -2147483648))
    .option('--verify <n>', 'check the engine against tfjs on the first N test images of --data (0 = skip)', intArg('--verify', 0), 0)
    .option('--data <dir>', 'data directory for --verify (IDX files)', FASHION_MNIST_DIR)
    .option('--json', 'print a JSON summary instead of text', false)
    .addOption(backendOption())
    .action(async (source: string, o: { out: string; method?: string; seed?: number; verify: number; data: string; json: boolean; backend: BackendChoice }) => {
      const { modelPath, label } = resolveExportSource(source, o);
      await initEngine({ backend: o.backend });
      const model = await loadLayersModel(modelPath);
      try {
        let desc: ReturnType<typeof describeShiftModel>;
        try {
          desc = describeShiftModel(model);
        } catch (e) {
          throw new UserError(`${label}: cannot export this model: ${(e as Error).message}`);
        }
        const bytes = packShiftModel(desc);
        writeFileAtomic(o.out, bytes);
        let shiftWeights = 0;
        let packedBits = 0;
        let floatValues = 0;
        const bitsUsed = new Set<number>();
        for (const l of desc.layers) {
          if (l.kind === 'shiftConv2d' || l.kind === 'shiftDense') {
            shiftWeights += l.weights.zero.length;
            packedBits += l.weights.zero.length * l.bits;
            bitsUsed.add(l.bits);
            floatValues += l.bias?.length ?? 0;
          } else if (l.kind === 'conv2d' || l.kind === 'dense') floatValues += l.kernel.length + (l.bias?.length ?? 0);
          else if (l.kind === 'channelAffine') floatValues += 2 * l.channels;
        }
        const float32Bytes = float32InferenceBytes(model);
        const latentBytes = 4 * model.weights.reduce((a, w) => a + w.shape.reduce((x: number, y) => x * (y ?? 1), 1), 0);
        const summary: Record<string, unknown> = {
          source: label,
          out: o.out,
          bytes: bytes.length,
          float32Bytes,
          ratio: float32Bytes / bytes.length,
          shiftWeights,
          shiftBits: [...bitsUsed],
          shiftPackedBytes: Math.ceil(packedBits / 8),
          floatValues,
          trainingModelBytes: latentBytes,
        };
        if (o.verify > 0) {
          const ds = loadImageDataset(o.data);
          const n = Math.min(o.verify, ds.test.n);
          const engine = new ShiftInferenceEngine(bytes);
          const t0 = performance.now();
          const pe = enginePredictions(engine, ds.test, n);
          const sec = (performance.now() - t0) / 1000;
          const pt = tfjsPredictions(model, ds.test, n);
          let agree = 0;
          let accE = 0;
          let accT = 0;
          for (let i = 0; i < n; i++) {
            if (pe[i] === pt[i]) agree++;
            if (pe[i] === ds.test.labels[i]) accE++;
            if (pt[i] === ds.test.labels[i]) accT++;
          }
          const verify: Record<string, unknown> = { images: n, agreement: agree / n, engineAcc: accE / n, tfjsAcc: accT / n, engineImagesPerSec: n / sec, engineBackend: engine.backend === 'native' ? 'native' : engine.backendReason };
          summary.verify = verify;
          if (engine.backend === 'native') {
            // The native path must equal the per-sample TypeScript engine bit for bit (float64 outputs).
            const images = ds.test.images.subarray(0, n * ds.test.height * ds.test.width);
            const ts = new ShiftInferenceEngine(bytes, { native: false });
            const t1 = performance.now();
            const zt = ts.logitsFloat64(images, n);
            const tsSec = (performance.now() - t1) / 1000;
            const zn = engine.logitsFloat64(images, n);
            Object.assign(verify, { bitIdenticalToTypeScript: zn.every((v, i) => Object.is(v, zt[i])), typeScriptImagesPerSec: n / tsSec });
          }
        }
        if (o.json) {
          process.stdout.write(JSON.stringify(summary, null, 2) + '\n');
          return;
        }
        const lines = [
          `exported ${label} -> ${o.out}`,
          `  compact format: ${bytes.length} bytes (${kib(bytes.length)})`,
          `  float32 model:  ${float32Bytes} bytes (${kib(float32Bytes)}; every inference weight as float32, shift kernels at their effective values) -> ${(float32Bytes / bytes.length).toFixed(2)}x smaller`,
          `  shift weights: ${shiftWeights} at ${[...bitsUsed].join('/') || '-'} bits = ${Math.ceil(packedBits / 8)} bytes packed (vs ${4 * shiftWeights} as float32); full-precision values (stem, head, folded BN): ${floatValues}`,
          `  training model (latent variables): ${latentBytes} bytes`,
        ];
        const v = summary.verify as
          | { images: number; agreement: number; engineAcc: number; tfjsAcc: number; engineImagesPerSec: number; engineBackend: string; bitIdenticalToTypeScript?: boolean; typeScriptImagesPerSec?: number }
          | undefined;
        if (v) {
          lines.push(
            `  verify on ${v.images} test images: argmax agreement ${(100 * v.agreement).toFixed(2)}%, engine acc ${(100 * v.engineAcc).toFixed(2)}%, tfjs acc ${(100 * v.tfjsAcc).toFixed(2)}%, engine ${v.engineImagesPerSec.toFixed(0)} images/s (${v.engineBackend})`,
          );
          if (v.bitIdenticalToTypeScript !== undefined) {
            lines.push(`  native vs TypeScript engine: outputs bit-identical: ${v.bitIdenticalToTypeScript ? 'yes' : 'NO'}; TypeScript ${v.typeScriptImagesPerSec!.toFixed(0)} images/s`);
          }
        }
        process.stdout.write(lines.join('\n') + '\n');
      } finally {
        model.dispose();
      }
    });
}
