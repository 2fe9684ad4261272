/**
 * The Data Hub over HTTP, for scripts (docs/design.md §Data Hub), on the setup
 * pages' port and behind the same password:
 *
 *   POST /api/hub/publish        {"topic": "studio/cam1", "data": {...}}  -> 200 once the active hub has it
 *   GET  /api/hub/state/KEY      -> {"key", "value", "version"}
 *   PUT  /api/hub/state/KEY      body: the JSON value (null deletes)      -> 200 once the active hub has it
 *   GET  /api/hub/stream?filter=studio/%23[&filter=...]   server-sent events: msg, value, gap
 *
 * Each request is a local app of the node's uplink, like an MQTT client or
 * `understudy pub`, so a failover is invisible to it. Errors are JSON
 * `{ error: { code, message } }` (app.onError).
 */
import { Hono } from "hono";
import { streamSSE } from "hono/streaming";
import { z } from "zod";
import { AppError, InvalidInput } from "../core/errors.ts";
import { filterProblem } from "../core/topics.ts";
import { InvalidWireJson, readWireJson } from "../core/wire-json.ts";
import { MAX_DATA_BYTES, MAX_DATA_DEPTH, jsonByteLength, type FromHubFrame } from "../hub/frames.ts";
import type { InProcessApp } from "../services/app-gateway.ts";
import { HubRequests } from "../services/hub-requests.ts";

/** Attaches a local app to this machine's uplink; null when the machine has no network role. */
export type AttachHubApp = (name: string, deliver: (frame: FromHubFrame) => void) => InProcessApp | null;

const publishBodySchema = z.object({ topic: z.string(), data: z.unknown().default(null) });
/** Filters per stream: enough for any dashboard, bounded like the node's own subscriptions. */
const MAX_STREAM_FILTERS = 32;
/**
 * Events a stream's reader has not taken yet, in bytes of their text: past this the stream ends, as the MQTT door
 * disconnects a subscriber that does not read (a paused `curl -N` grew the node's memory without bound).
 */
export const MAX_STREAM_UNREAD_BYTES = 1024 * 1024;

export class NoDataHub extends AppError {
  constructor() {
    super("NO_DATA_HUB", "This machine is stand-alone, so it has no Data Hub: choose a network role on the setup page first.", { status: 503 });
    this.name = "NoDataHub";
  }
}

/** A body larger than the hub would take, refused before it is read whole: 413 with the limit, at once. */
export class BodyTooLarge extends AppError {
  constructor(what: string, size: number) {
    super("TOO_LARGE", `The ${what} is ${size} bytes; the Data Hub takes at most ${MAX_DATA_BYTES / 1024} KiB of JSON per message or value.`, { status: 413 });
    this.name = "BodyTooLarge";
  }
}

/** The body's text, at most this long: the data plus the fields around it. */
const MAX_BODY_BYTES = MAX_DATA_BYTES + 4 * 1024;

export function hubApiRoutes(attach: AttachHubApp): Hono {
  const api = new Hono();
  /** One request: a HubRequests app for its lifetime. */
  const withHub = async <T>(run: (hub: HubRequests) => Promise<T>): Promise<T> => {
    let app: InProcessApp | null = null;
    const hub = new HubRequests((deliver) => {
      app = attach("http", deliver);
      if (!app) throw new NoDataHub();
      return app;
    });
    try {
      return await run(hub);
    } finally {
      hub.close();
    }
  };

  api.post("/publish", async (c) => {
    const body = publishBodySchema.safeParse(await jsonBody(c.req.raw));
    if (!body.success) throw new InvalidInput(`The body must be {"topic": "...", "data": ...}: ${body.error.issues[0]?.message ?? "invalid"}.`, "body");
    refuseLargeData("data", body.data.data);
    await withHub((hub) => hub.publish(body.data.topic, body.data.data));
    return c.json({ ok: true });
  });

  api.get("/state/:key{.+}", async (c) => c.json(await withHub((hub) => hub.get(c.req.param("key")))));

  api.put("/state/:key{.+}", async (c) => {
    const value = await jsonBody(c.req.raw);
    refuseLargeData("value", value);
    await withHub((hub) => hub.set(c.req.param("key"), value));
    return c.json({ ok: true });
  });

  api.get("/stream", (c) => {
    const filters = c.req.queries("filter") ?? [];
    if (filters.length === 0 || filters.length > MAX_STREAM_FILTERS) throw new InvalidInput(`Give 1 to ${MAX_STREAM_FILTERS} filters: /api/hub/stream?filter=studio/%23`, "filter");
    for (const filter of filters) {
      const problem = filterProblem(filter);
      if (problem) throw new InvalidInput(`filter "${filter}": ${problem}`, "filter");
    }
    const events: { event: string; data: string }[] = [];
    let unread = 0;
    let wake: (() => void) | null = null;
    let sse: { abort(): void } | null = null;
    let cutOff = false;
    const app = attach("sse", (frame) => {
      if (cutOff || (frame.type !== "msg" && frame.type !== "value" && frame.type !== "gap")) return;
      const data = JSON.stringify(sseData(frame));
      unread += data.length;
      if (unread > MAX_STREAM_UNREAD_BYTES) {
        cutOff = true;
        events.length = 0;
        sse?.abort();
        return;
      }
      events.push({ event: frame.type, data });
      wake?.();
    });
    if (!app) throw new NoDataHub();
    for (const filter of filters) app.send({ type: "sub", filter });
    return streamSSE(c, async (stream) => {
      let open = true;
      stream.onAbort(() => {
        open = false;
        wake?.();
      });
      sse = stream;
      if (cutOff) stream.abort();
      try {
        while (open) {
          if (events.length === 0) await new Promise<void>((resolve) => (wake = resolve));
          wake = null;
          for (const event of events.splice(0)) {
            await stream.writeSSE(event);
            unread -= event.data.length;
          }
        }
      } finally {
        app.close();
      }
    });
  });

  return api;
}

function sseData(frame: FromHubFrame): unknown {
  if (frame.type === "msg") return { topic: frame.topic, data: frame.data, from: frame.from, seq: frame.seq };
  if (frame.type === "value") return { key: frame.key, value: frame.value, version: frame.version };
  if (frame.type === "gap") return { missed: frame.missed, message: frame.message };
  return frame;
}

function refuseLargeData(what: string, value: unknown): void {
  const size = jsonByteLength(value);
  if (size !== null && size > MAX_DATA_BYTES) throw new BodyTooLarge(what, size);
}

async function jsonBody(request: Request): Promise<unknown> {
  const declared = Number(request.headers.get("content-length") ?? 0);
  if (declared > MAX_BODY_BYTES) throw new BodyTooLarge("body", declared);
  const text = await request.text();
  if (text.length > MAX_BODY_BYTES) throw new BodyTooLarge("body", text.length);
  try {
    // Deeper than the hub takes, so the hub's own refusal (with its limit) is what the caller reads.
    return readWireJson(text, { maxBytes: MAX_BODY_BYTES, maxDepth: 4 * MAX_DATA_DEPTH });
  } catch (error) {
    const why = error instanceof InvalidWireJson && /deeper/.test(error.message) ? error.message : "The body is not JSON";
    throw new InvalidInput(`${why} (send e.g. {"topic": "studio/cam1", "data": {"zoom": 2}} or a JSON value).`, "body");
  }
}
