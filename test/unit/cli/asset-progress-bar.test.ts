/** The transfer progress bar (cli/progress-bar.ts) under a manual clock: terminal redraws, plain final line elsewhere. */
import { expect, test } from "bun:test";
import { formatBytes, formatDuration, formatFinalLine, formatProgressLine, ProgressBar, REDRAW_MS } from "../../../src/cli/progress-bar.ts";

test.each([
  [0, "0 B"],
  [999, "999 B"],
  [1000, "1.0 kB"],
  [3_670_016, "3.7 MB"],
  [209_715_200, "209.7 MB"],
  [1_073_741_824, "1.1 GB"],
  [5e15, "5000.0 TB"],
])("formatBytes(%d) = %s", (bytes, text) => {
  expect(formatBytes(bytes)).toBe(text);
});

test.each([
  [0, "0.0 s"],
  [4.24, "4.2 s"],
  [9.96, "10 s"],
  [42.4, "42 s"],
  [185, "3 min 05 s"],
  [3720, "1 h 02 min"],
  [Number.NaN, "--"],
  [Number.POSITIVE_INFINITY, "--"],
])("formatDuration(%d) = %s", (seconds, text) => {
  expect(formatDuration(seconds)).toBe(text);
});

test("the terminal line has the bar, percent, bytes, MB/s and ETA, and fits the width", () => {
  const state = { label: "Uploading a.mov", done: 250e6, total: 1e9, moved: 250e6, elapsedMs: 1000 };
  const line = formatProgressLine(state, 100);
  expect(line).toBe("Uploading a.mov [########........................]  25%  250.0 MB / 1.0 GB  250.0 MB/s  ETA 3.0 s");
  // The bar keeps its width while the numbers change.
  expect(formatProgressLine({ ...state, done: 999e6, moved: 999e6 }, 100).indexOf("]")).toBe(line.indexOf("]"));
  expect(line.length).toBeLessThan(100);
  expect(formatProgressLine(state, 60).length).toBeLessThan(60);
  expect(formatProgressLine({ ...state, done: 0, moved: 0, elapsedMs: 0 }, 100)).toContain("0%  0 B / 1.0 GB  0.0 MB/s  ETA --");
  expect(formatProgressLine({ ...state, total: 0, done: 0 }, 100)).toContain("100%");
});

test("resumed bytes count toward progress, not speed", () => {
  expect(formatFinalLine({ label: "Uploading a.mov", done: 300e6, total: 300e6, moved: 100e6, elapsedMs: 500 })).toBe(
    "Uploading a.mov: 100.0 MB in 0.5 s (200.0 MB/s), 200.0 MB already there",
  );
});

test("on a terminal the bar redraws in place, at most every REDRAW_MS, and ends with the summary", () => {
  let now = 0;
  const written: string[] = [];
  const bar = new ProgressBar("Downloading b.mov", 4e6, { write: (t: string) => written.push(t), isTTY: true, columns: 100 }, { now: () => now });
  bar.advance(1e6);
  now += REDRAW_MS / 2;
  bar.advance(1e6); // too soon: not drawn
  now += REDRAW_MS;
  bar.advance(1e6);
  now = 2000;
  bar.finish();
  expect(written).toHaveLength(4);
  expect(written[0]).toStartWith("\rDownloading b.mov [");
  expect(written[0]).toEndWith("\x1b[K");
  expect(written[1]).toContain(" 75%  3.0 MB / 4.0 MB");
  expect(written[2]).toContain(" 75%");
  expect(written[3]).toBe("\nDownloading b.mov: 3.0 MB in 2.0 s (1.5 MB/s)\n");
});

test("off a terminal nothing is drawn until the one final line; abandon adds nothing", () => {
  const written: string[] = [];
  const sink = { write: (t: string) => written.push(t), isTTY: false };
  const bar = new ProgressBar("Uploading c.mov", 2e6, sink, { now: () => 0 });
  bar.skip(1e6);
  bar.advance(1e6);
  bar.abandon();
  expect(written).toEqual([]);
  bar.finish();
  expect(written).toEqual(["Uploading c.mov: 1.0 MB in 0.0 s (0.0 MB/s), 1.0 MB already there\n"]);
});
