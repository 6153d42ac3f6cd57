/** A progress update from a worker for one (method, seed) run. */
export interface ProgressUpdate {
  method: string;
  seed: number;
  epoch?: number;
  epochs?: number;
  step?: number;
  steps?: number;
  loss?: number;
  message?: string;
}

interface RunState extends ProgressUpdate {
  lastStep: number;
  lastT: number;
  rate: number;
  startT: number;
}

const fmtTime = (s: number) => {
  if (!Number.isFinite(s) || s < 0) return '--:--';
  const m = Math.floor(s / 60);
  return `${m}:${String(Math.floor(s % 60)).padStart(2, '0')}`;
};

/**
 * Progress display for the runner: a single redrawn status line (bar, loss, steps/s, ETA) on a TTY;
 * one plain line per finished epoch otherwise (CI logs, pipes). Writes to stderr; data goes to stdout.
 */
export class ProgressView {
  private readonly tty: boolean;
  private readonly runs = new Map<string, RunState>();
  private done = 0;
  private readonly t0 = Date.now();
  private lastDraw = 0;

  constructor(
    private readonly total: number,
    private readonly out: NodeJS.WriteStream = process.stderr,
    quiet = false,
  ) {
    this.tty = !quiet && !!out.isTTY && !process.env.CI;
    this.quiet = quiet;
  }
  private readonly quiet: boolean;

  update(u: ProgressUpdate): void {
    const key = `${u.method}#${u.seed}`;
    const now = Date.now();
    let st = this.runs.get(key);
    if (!st) {
      st = { ...u, lastStep: 0, lastT: now, rate: 0, startT: now };
      this.runs.set(key, st);
    }
    const isEpochEnd = u.message !== undefined && u.step === undefined;
    if (u.step !== undefined && u.step > st.lastStep && now > st.lastT) {
      const r = ((u.step - st.lastStep) * 1000) / (now - st.lastT);
      st.rate = st.rate ? 0.7 * st.rate + 0.3 * r : r;
    }
    if (u.step !== undefined) {
      st.lastStep = u.step >= (st.step ?? 0) ? u.step : 0;
      st.lastT = now;
    }
    Object.assign(st, u);
    if (isEpochEnd) {
      st.step = st.steps;
      if (!this.tty && !this.quiet) {
        const el = ((now - st.startT) / 1000).toFixed(1);
        const loss = u.loss === undefined ? '' : ` loss ${u.loss.toFixed(4)}`;
        this.out.write(`[${u.method} seed ${u.seed}] epoch ${u.epoch}/${u.epochs}${loss} ${u.message} (${el}s)\n`);
      }
    }
    if (this.tty && now - this.lastDraw > 150) this.draw();
  }

  finishRun(method: string, seed: number, summary: string): void {
    this.runs.delete(`${method}#${seed}`);
    this.done++;
    if (this.quiet) return;
    if (this.tty) this.out.write('\r\x1b[K');
    this.out.write(`[${method} seed ${seed}] done: ${summary}  (${this.done}/${this.total})\n`);
    if (this.tty) this.draw();
  }

  private fraction(): number {
    let f = this.done;
    for (const st of this.runs.values()) {
      if (st.epochs) f += Math.min(1, ((st.epoch ?? 0) + (st.steps ? (st.step ?? 0) / st.steps : 0)) / st.epochs);
    }
    return f / Math.max(1, this.total);
  }

  private draw(): void {
    this.lastDraw = Date.now();
    const f = this.fraction();
    const el = (Date.now() - this.t0) / 1000;
    const eta = f > 0.01 ? (el / f) * (1 - f) : NaN;
    const width = 20;
    const bar = '█'.repeat(Math.round(f * width)).padEnd(width, '░');
    const parts = [...this.runs.entries()].map(
      ([k, st]) => `${k} e${(st.epoch ?? 0) + (st.step !== st.steps ? 1 : 0)}/${st.epochs ?? '?'} ${st.step ?? 0}/${st.steps ?? '?'} loss ${st.loss?.toFixed(3) ?? '-'} ${st.rate.toFixed(0)} st/s`,
    );
    const line = `${bar} ${(f * 100).toFixed(0)}% ${this.done}/${this.total} runs | ${parts.join(' | ')} | ETA ${fmtTime(eta)}`;
    const cols = this.out.columns ?? 120;
    this.out.write('\r\x1b[K' + line.slice(0, cols - 1));
  }

  close(): void {
    if (this.tty) this.out.write('\r\x1b[K');
  }
}
