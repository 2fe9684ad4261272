/**
 * A progress bar on stderr for long transfers (push, pull): bytes done of the
 * total, the rate, redrawn at most a few times a second. Only on a terminal;
 * scripts and logs get the one-line result on stdout and nothing else.
 */
const REDRAW_MS = 200;
const BAR_WIDTH = 30;

export type ProgressSink = { write(text: string): unknown; readonly isTTY?: boolean };

export class ProgressBar {
  private done = 0;
  private lastDraw = 0;
  private readonly started = performance.now();

  constructor(
    private readonly label: string,
    private readonly total: number,
    private readonly sink: ProgressSink | null = process.stderr.isTTY ? process.stderr : null,
  ) {}

  /** Adds `bytes` done and redraws when it is time. */
  advance(bytes: number): void {
    this.done += bytes;
    const now = performance.now();
    if (now - this.lastDraw >= REDRAW_MS) {
      this.lastDraw = now;
      this.draw(now);
    }
  }

  /** Draws the final state and ends the line. */
  finish(): void {
    if (!this.sink || this.total === 0) return;
    this.draw(performance.now());
    this.sink.write("\n");
  }

  private draw(now: number): void {
    if (!this.sink || this.total === 0) return;
    const fraction = Math.min(1, this.done / this.total);
    const filled = Math.round(fraction * BAR_WIDTH);
    const seconds = Math.max(0.001, (now - this.started) / 1000);
    const mib = (n: number) => (n / 1024 / 1024).toFixed(1);
    const rate = (this.done / 1e6 / seconds).toFixed(0);
    this.sink.write(`\r${this.label} [${"#".repeat(filled)}${" ".repeat(BAR_WIDTH - filled)}] ${mib(this.done)}/${mib(this.total)} MiB ${rate} MB/s`);
  }
}
