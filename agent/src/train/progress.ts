/**
 * One-line terminal progress bar per epoch: redrawn in place on a TTY, one line per epoch otherwise
 * (CI logs and files stay readable).
 */
export class EpochProgress {
  private readonly started = Date.now();
  private lastDraw = 0;

  constructor(
    private readonly out: NodeJS.WritableStream & { isTTY?: boolean },
    private readonly label: string,
    private readonly maxEpochs: number,
    private readonly batchesPerEpoch: number,
  ) {}

  batch(epoch: number, batch: number, loss: number): void {
    if (!this.out.isTTY) return;
    const now = Date.now();
    if (now - this.lastDraw < 200 && batch < this.batchesPerEpoch) return;
    this.lastDraw = now;
    this.out.write(`\r${this.line(epoch, batch, loss)}`);
  }

  epochEnd(epoch: number, loss: number, valLoss: number, note = ''): void {
    const done = this.line(epoch, this.batchesPerEpoch, loss);
    this.out.write(`${this.out.isTTY ? '\r' : ''}${done} val ${valLoss.toExponential(3)}${note ? ' ' + note : ''}\n`);
  }

  private line(epoch: number, batch: number, loss: number): string {
    const width = 24;
    const frac = batch / this.batchesPerEpoch;
    const filled = Math.round(frac * width);
    const elapsed = (Date.now() - this.started) / 1000;
    const doneEpochs = epoch - 1 + frac;
    // ETA for the epoch budget; early stopping usually ends sooner.
    const eta = doneEpochs > 0 ? (elapsed / doneEpochs) * (this.maxEpochs - doneEpochs) : NaN;
    return `${this.label} epoch ${epoch}/${this.maxEpochs} [${'#'.repeat(filled)}${'-'.repeat(width - filled)}] loss ${loss.toExponential(3)} ETA ${formatSeconds(eta)}`;
  }
}

export function formatSeconds(s: number): string {
  if (!Number.isFinite(s)) return '--:--';
  const whole = Math.round(s); // rounded once, so 59.6 s is 1:00, not 0:60
  const m = Math.floor(whole / 60);
  const sec = whole % 60;
  return `${m}:${String(sec).padStart(2, '0')}`;
}

/**
 * Progress of one long task in steps (windows scored, files run): a bar with ETA redrawn in place on
 * a TTY; on anything else a line at every quarter, so logs show it moving without flooding.
 */
export class TaskProgress {
  private readonly started = Date.now();
  private lastDraw = 0;
  private lastQuarter = 0;

  constructor(
    private readonly out: NodeJS.WritableStream & { isTTY?: boolean },
    private readonly label: string,
  ) {}

  update(done: number, total: number): void {
    const frac = total > 0 ? done / total : 1;
    if (this.out.isTTY) {
      const now = Date.now();
      if (now - this.lastDraw < 200 && done < total) return;
      this.lastDraw = now;
      this.out.write(`\r${this.line(done, total)}`);
      return;
    }
    const quarter = Math.floor(frac * 4);
    if (quarter > this.lastQuarter && done < total) {
      this.lastQuarter = quarter;
      this.out.write(`${this.line(done, total)}\n`);
    }
  }

  /** The closing line (replaces the bar on a TTY). */
  done(note: string): void {
    this.out.write(`${this.out.isTTY ? '\r\x1b[K' : ''}${this.label}: ${note} in ${formatSeconds((Date.now() - this.started) / 1000)}\n`);
  }

  private line(done: number, total: number): string {
    const width = 24;
    const frac = total > 0 ? done / total : 1;
    const filled = Math.round(frac * width);
    const elapsed = (Date.now() - this.started) / 1000;
    const eta = frac > 0 ? (elapsed / frac) * (1 - frac) : NaN;
    return `${this.label} [${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${done}/${total} ETA ${formatSeconds(eta)}`;
  }
}
