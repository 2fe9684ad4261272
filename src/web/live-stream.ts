/**
 * The live stream behind every panel (`GET /events`, read by htmx's SSE
 * extension): the page's live parts, rendered again every LIVE_TICK_MS and
 * sent only when they changed, each marked to swap out of band by its id.
 * When nothing changed an `alive` event goes out at least every
 * LIVE_ALIVE_MS, so the page can tell a quiet machine from a lost one
 * (static/console.js). A stream ends after LIVE_STREAM_MAX_MS; the page
 * reconnects on its own, so no stream lives forever.
 */
import type { Context } from "hono";
import { streamSSE } from "hono/streaming";
import type { Clock } from "../core/clock.ts";
import { systemClock } from "../net/system-time.ts";

export const LIVE_TICK_MS = 500;
export const LIVE_ALIVE_MS = 500;
export const LIVE_STREAM_MAX_MS = 10 * 60_000;

export function liveStream(c: Context, render: () => string | Promise<string>, clock: Clock = systemClock): Response {
  const now = () => clock.now();
  return streamSSE(c, async (stream) => {
    let aborted = false;
    stream.onAbort(() => {
      aborted = true;
    });
    const started = now();
    let last = "";
    let sentAt = -Infinity;
    while (!aborted && now() - started < LIVE_STREAM_MAX_MS) {
      const html = await render();
      if (html !== last) {
        await stream.writeSSE({ data: html });
        last = html;
        sentAt = now();
      } else if (now() - sentAt >= LIVE_ALIVE_MS) {
        await stream.writeSSE({ event: "alive", data: "" });
        sentAt = now();
      }
      await stream.sleep(LIVE_TICK_MS);
    }
  });
}
