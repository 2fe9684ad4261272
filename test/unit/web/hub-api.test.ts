/**
 * The Data Hub over HTTP: routes driven with app.request(), each request a
 * local app of a node whose uplink is wired to a real HubCore.
 */
import { describe, expect, test } from "bun:test";
import type { FromHubFrame } from "../../../src/hub/frames.ts";
import { hubApiRoutes, MAX_STREAM_UNREAD_BYTES } from "../../../src/web/hub-api.ts";
import { Hono } from "hono";
import { AppError } from "../../../src/core/errors.ts";
import { HubRequests } from "../../../src/services/hub-requests.ts";
import { FakeHubServer, FakeNode, Wire } from "../hub/hub-harness.ts";

/** A node on an active hub whose wire settles by itself (a microtask after each frame), and the API on it. */
function apiOnNode(options: { attached?: boolean } = {}) {
  const hub = new FakeHubServer({ epoch: 1, writable: true });
  const apps = new Map<string, (frame: FromHubFrame) => void>();
  const node = new FakeNode("n", {
    deliver: (frame, ids) => {
      for (const id of ids) apps.get(id)?.(frame);
    },
  });
  let wire: Wire | null = null;
  if (options.attached !== false) wire = new Wire(node, hub);
  let scheduled = false;
  const settleSoon = () => {
    if (scheduled || !wire) return;
    scheduled = true;
    queueMicrotask(() => {
      scheduled = false;
      for (let i = 0; i < 100 && !wire!.idle; i++) {
        wire!.pumpUp();
        wire!.pumpDown();
      }
    });
  };
  let next = 0;
  const app = new Hono();
  app.onError((error, c) => {
    if (error instanceof AppError) return c.json({ error: { code: error.code, message: error.message } }, error.status as 400);
    throw error;
  });
  app.route(
    "/api/hub",
    hubApiRoutes((name, deliver) => {
      const id = `${name}${++next}`;
      apps.set(id, deliver);
      return {
        id,
        send: (frame) => {
          node.uplink.fromApp(id, frame, 0);
          settleSoon();
        },
        close: () => {
          apps.delete(id);
          node.uplink.appGone(id);
        },
      };
    }),
  );
  return { app, hub, node };
}

const json = (body: unknown, method = "POST") => ({ method, body: JSON.stringify(body), headers: { "content-type": "application/json" } });

describe("the Data Hub over HTTP", () => {
  test("publish answers once the hub acknowledged it; a bad topic is a 400 naming the problem", async () => {
    const { app, hub } = apiOnNode();
    const seen: unknown[] = [];
    hub.attach("watcher", (frame) => seen.push(frame));
    hub.receive("watcher", { type: "hello", id: "w", name: "w", kind: "app" });
    hub.receive("watcher", { type: "sub", filter: "studio/#" });
    const ok = await app.request("/api/hub/publish", json({ topic: "studio/cam1", data: { zoom: 2 } }));
    expect(ok.status).toBe(200);
    expect(seen.filter((f) => (f as { type: string }).type === "msg")).toMatchObject([{ topic: "studio/cam1", data: { zoom: 2 } }]);
    const bad = await app.request("/api/hub/publish", json({ topic: "studio/#", data: 1 }));
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { code: string; message: string } }).error).toMatchObject({ code: "INVALID_FRAME" });
    const notJson = await app.request("/api/hub/publish", { method: "POST", body: "zoom=2" });
    expect(notJson.status).toBe(400);
  });

  test("a value the hub would refuse is refused at once with the reason, and nothing stays queued", async () => {
    const { app, node } = apiOnNode();
    const deep = nested(64);
    const tooDeep = await app.request("/api/hub/publish", json({ topic: "studio/cam1", data: deep }));
    expect(tooDeep.status).toBe(400);
    expect(((await tooDeep.json()) as { error: { code: string; message: string } }).error).toMatchObject({ code: "INVALID_FRAME", message: expect.stringContaining("at most 32 levels") });
    expect((await app.request("/api/hub/state/scene", json(deep, "PUT"))).status).toBe(400);
    const large = await app.request("/api/hub/publish", json({ topic: "studio/cam1", data: "x".repeat(70_000) }));
    expect(large.status).toBe(413);
    expect(((await large.json()) as { error: { code: string } }).error.code).toBe("TOO_LARGE");
    expect(node.uplink.queuedFrames).toBe(0);
  });

  test("PUT then GET a state key (with slashes); null deletes it", async () => {
    const { app } = apiOnNode();
    expect((await app.request("/api/hub/state/scene/current", json("news", "PUT"))).status).toBe(200);
    const got = await app.request("/api/hub/state/scene/current");
    expect(await got.json()).toEqual({ key: "scene/current", value: "news", version: { epoch: 1, seq: 1 } });
    await app.request("/api/hub/state/scene/current", json(null, "PUT"));
    expect(((await (await app.request("/api/hub/state/scene/current")).json()) as { value: unknown }).value).toBeNull();
  });

  test("the stream sends matching messages as server-sent events", async () => {
    const { app } = apiOnNode();
    const response = await app.request("/api/hub/stream?filter=studio/%23");
    expect(response.headers.get("content-type")).toContain("text/event-stream");
    await app.request("/api/hub/publish", json({ topic: "other", data: 0 }));
    await app.request("/api/hub/publish", json({ topic: "studio/cam1", data: { zoom: 2 } }));
    const reader = response.body!.getReader();
    const { value } = await reader.read();
    const text = new TextDecoder().decode(value);
    expect(text).toContain("event: msg");
    expect(text).toContain('"topic":"studio/cam1","data":{"zoom":2}');
    expect(text).not.toContain('"topic":"other"');
    await reader.cancel();
  });

  test("a stream whose reader stops reading ends once a MiB waits unread, instead of holding every message", async () => {
    const { app } = apiOnNode();
    const response = await app.request("/api/hub/stream?filter=studio/%23");
    const reader = response.body!.getReader();
    const pad = "p".repeat(60 * 1024);
    const publish = (i: number) => app.request("/api/hub/publish", json({ topic: "studio/big", data: { i, pad } }));
    await publish(0);
    expect(new TextDecoder().decode((await reader.read()).value)).toContain('"i":0');
    // The reader now stops: past MAX_STREAM_UNREAD_BYTES of waiting events the stream is ended, not grown.
    const count = Math.ceil(MAX_STREAM_UNREAD_BYTES / pad.length) + 8;
    for (let i = 1; i <= count; i++) await publish(i);
    let text = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      text += new TextDecoder().decode(value);
    }
    const got = [...text.matchAll(/"i":(\d+)/g)].length;
    expect(got).toBeLessThan(count);
  });

  test("a stream needs a valid filter", async () => {
    const { app } = apiOnNode();
    expect((await app.request("/api/hub/stream")).status).toBe(400);
    expect((await app.request("/api/hub/stream?filter=a/%23/b")).status).toBe(400);
  });

  test("a stand-alone machine has no Data Hub: 503 saying what to do", async () => {
    const app = new Hono();
    app.onError((error, c) => c.json({ error: { code: (error as AppError).code, message: error.message } }, 503));
    app.route("/api/hub", hubApiRoutes(() => null));
    const response = await app.request("/api/hub/publish", json({ topic: "t", data: 1 }));
    expect(response.status).toBe(503);
    expect(((await response.json()) as { error: { code: string } }).error.code).toBe("NO_DATA_HUB");
  });
});

describe("requests the hub does not answer", () => {
  test("fail after the stated wait with HUB_TIMEOUT, saying nothing is known of their outcome", async () => {
    const requests = new HubRequests(() => ({ id: "x", send() {}, close() {} }), 20);
    const error = await requests.publish("t", 1).catch((e: AppError) => e);
    expect(error).toMatchObject({ code: "HUB_TIMEOUT", status: 504 });
    expect((error as AppError).message).toContain("within 0.02 s");
  });
});

function nested(depth: number): unknown {
  let value: unknown = 1;
  for (let i = 0; i < depth; i++) value = { v: value };
  return value;
}
