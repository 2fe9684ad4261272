/**
 * A progress bar for long transfers on stderr. On a terminal it redraws one line
 * (percent, bytes, MB/s, ETA) at most every REDRAW_MS; anywhere else (a pipe, a
 * log file, CI) it stays quiet until the end and prints one plain line, so logs
 * don't fill with carriage returns. Time comes from `now`, so tests are exact.
 */
import type { Clock } from "../core/clock.ts";
import { systemClock } from "../net/system-time.ts";

export type ProgressSink = { write(text: string): unknown; isTTY?: boolean; columns?: number };

export const REDRAW_MS = 100;
const DEFAULT_COLUMNS = 80;
const BAR_MIN = 8;
const BAR_MAX = 40;
/** Room kept for the text after the bar at its longest, so the bar doesn't change width as numbers change. */
const TAIL_CHARS = 48;

/** Decimal units, as MB/s is: 1 MB = 1,000,000 bytes. */
export function formatBytes(bytes: number): string {
  if (bytes < 1000) return `${bytes} B`;
  const units = ["kB", "MB", "GB", "TB"];
  let value = bytes / 1000;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${value.toFixed(1)} ${units[unit]}`;
}

export function formatRate(bytesPerSecond: number): string {
  return `${(bytesPerSecond / 1e6).toFixed(1)} MB/s`;
}

/** "4.2 s", "42 s", "3 min 05 s", "1 h 02 min"; "--" when not known yet. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "--";
  if (seconds < 9.95) return `${seconds.toFixed(1)} s`;
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, "0")} s`;
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")} min`;
}

export type ProgressState = {
  label: string;
  done: number;
  total: number;
  /** Bytes moved in this run (resumed bytes count toward `done`, not toward the rate). */
  moved: number;
  elapsedMs: number;
};

/** The terminal line: `label [#####.....]  42%  420.0 MB / 1.0 GB  310.2 MB/s  ETA 2 s`, fitted to `columns`. */
export function formatProgressLine(state: ProgressState, columns = DEFAULT_COLUMNS): string {
  const fraction = state.total === 0 ? 1 : Math.min(1, state.done / state.total);
  const rate = state.elapsedMs > 0 ? (state.moved * 1000) / state.elapsedMs : 0;
  const eta = rate > 0 ? (state.total - state.done) / rate : Number.NaN;
  const percent = `${Math.floor(fraction * 100)}%`.padStart(4);
  const tail = `${percent}  ${formatBytes(state.done)} / ${formatBytes(state.total)}  ${formatRate(rate)}  ETA ${formatDuration(eta)}`;
  const room = columns - 1 - Math.max(TAIL_CHARS, tail.length) - state.label.length - 4;
  if (room < BAR_MIN) return `${state.label} ${tail}`.slice(0, Math.max(0, columns - 1));
  const width = Math.min(BAR_MAX, room);
  const filled = Math.round(fraction * width);
  return `${state.label} [${"#".repeat(filled)}${".".repeat(width - filled)}] ${tail}`;
}

/** The one line printed at the end: `label: 1.0 GB in 3 s (310.2 MB/s)`, plus what a resume skipped. */
export function formatFinalLine(state: ProgressState): string {
  const rate = state.elapsedMs > 0 ? (state.moved * 1000) / state.elapsedMs : 0;
  const skipped = state.done - state.moved;
  const resumed = skipped > 0 ? `, ${formatBytes(skipped)} already there` : "";
  return `${state.label}: ${formatBytes(state.moved)} in ${formatDuration(state.elapsedMs / 1000)} (${formatRate(rate)})${resumed}`;
}

export class ProgressBar {
  private readonly state: ProgressState;
  private readonly started: number;
  private lastDraw = Number.NEGATIVE_INFINITY;
  private drawn = false;

  constructor(
    label: string,
    total: number,
    private readonly sink: ProgressSink,
    private readonly clock: Clock = systemClock,
  ) {
    this.state = { label, done: 0, total, moved: 0, elapsedMs: 0 };
    this.started = clock.now();
  }

  /** Counts bytes that were already there (a resume): progress, but not speed. */
  skip(bytes: number): void {
    this.state.done += bytes;
    this.draw(false);
  }

  /** Counts bytes moved in this run. */
  advance(bytes: number): void {
    this.state.done += bytes;
    this.state.moved += bytes;
    this.draw(false);
  }

  /** Ends the bar: a finished terminal line plus the plain summary; the summary alone elsewhere. */
  finish(): void {
    this.state.elapsedMs = this.clock.now() - this.started;
    if (this.sink.isTTY) this.draw(true);
    this.sink.write(`${this.sink.isTTY ? "\n" : ""}${formatFinalLine(this.state)}\n`);
  }

  /** Leaves the terminal on a fresh line after a failure (the error message follows). */
  abandon(): void {
    if (this.sink.isTTY && this.drawn) this.sink.write("\n");
  }

  private draw(force: boolean): void {
    if (!this.sink.isTTY) return;
    const now = this.clock.now();
    if (!force && now - this.lastDraw < REDRAW_MS) return;
    this.lastDraw = now;
    this.state.elapsedMs = now - this.started;
    // `||`, not `??`: a pseudo-terminal may report 0 columns.
    this.sink.write(`\r${formatProgressLine(this.state, this.sink.columns || DEFAULT_COLUMNS)}\x1b[K`);
    this.drawn = true;
  }
}
