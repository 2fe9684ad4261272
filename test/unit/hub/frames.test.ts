import { describe, expect, test } from "bun:test";
import {
  MAX_DATA_BYTES,
  MAX_DATA_DEPTH,
  MAX_FRAME_BYTES,
  SMALL_TEXT_BYTES,
  encodeFrame,
  fromHubFrameSchema,
  jsonByteLength,
  parseFromHubFrame,
  parseToHubFrame,
  toHubFrameSchema,
  utf8ByteLength,
  type FromHubFrame,
  type ToHubFrame,
} from "../../../src/hub/frames.ts";

const toHub: ToHubFrame[] = [
  { type: "hello", id: "m-1", name: "Render 1", kind: "node" },
  { type: "hello", id: "m-1", name: "Render 1", kind: "node", resumeFromEpoch: 3 },
  { type: "resync" },
  { type: "ping", sentAt: 12.5, delayMs: 3 },
  { type: "sub", filter: "studio/+/tally" },
  { type: "unsub", filter: "studio/#" },
  { type: "pub", topic: "studio/cam1/tally", data: { on: true }, origin: "app-a", seq: 1 },
  { type: "set", key: "studio/rundown", value: [1, 2], origin: "app-a", seq: 2 },
  { type: "set", key: "studio/rundown", value: null, origin: "app-a", seq: 3 },
  { type: "get", key: "studio/rundown", id: "g1" },
  { type: "offer", service: "clip.play" },
  { type: "unoffer", service: "clip.play" },
  { type: "call", service: "clip.play", id: "1", data: { clip: 3 } },
  { type: "reply", id: "c1", data: "ok" },
  { type: "reply", id: "c2", error: { code: "BUSY", message: "Player busy" } },
];

const fromHub: FromHubFrame[] = [
  { type: "welcome", epoch: 4 },
  { type: "msg", topic: "a/b", data: 1, from: "app-a", seq: 9 },
  { type: "ack", origin: "app-a", seq: 9 },
  { type: "value", key: "a/b", value: "x", version: { epoch: 2, seq: 7 } },
  { type: "value", key: "a/b", value: null, version: { epoch: 0, seq: 0 }, id: "g1" },
  { type: "call", service: "clip.play", id: "c1", data: null, from: "m-2" },
  { type: "reply", id: "1", data: { done: true } },
  { type: "presence", members: [{ id: "m-1", name: "Render 1", kind: "node", delayMs: null }] },
  { type: "pong", sentAt: 12.5 },
  { type: "error", code: "NOT_ACTIVE", message: "m", ref: { type: "pub", origin: "app-a", seq: 3 } },
];

describe("every frame survives JSON and both parsers agree with the union schemas", () => {
  test.each(toHub.map((f) => [f.type, f] as const))("to hub: %s", (_type, frame) => {
    const parsed = parseToHubFrame(encodeFrame(frame));
    expect(parsed).toEqual({ ok: true, frame });
    expect(toHubFrameSchema.parse(frame)).toEqual(frame);
  });
  test.each(fromHub.map((f) => [f.type, f] as const))("from hub: %s", (_type, frame) => {
    expect(parseFromHubFrame(encodeFrame(frame))).toEqual({ ok: true, frame });
    expect(fromHubFrameSchema.parse(frame)).toEqual(frame);
  });
});

describe("bad frames are refused with a message that says what is wrong", () => {
  const big = "x".repeat(MAX_DATA_BYTES);
  // [what, input, part of the message]
  const cases: [string, unknown, string][] = [
    ["not JSON", "{type:", "not valid JSON"],
    ["not an object", "[1,2]", "must be a JSON object"],
    ["no type", { topic: "a" }, "unknown type undefined"],
    ["unknown type", { type: "publish" }, 'unknown type "publish"; expected one of hello, ping, sub'],
    ["missing field", { type: "pub", topic: "a", origin: "o", seq: 1 }, 'Frame "pub" refused, field "data": must be a JSON value'],
    ["wildcard in a topic", { type: "pub", topic: "a/+", data: 1, origin: "o", seq: 1 }, 'cannot contain "+" or "#"'],
    ["topic too long", { type: "pub", topic: "t".repeat(257), data: 1, origin: "o", seq: 1 }, "at most 256 characters"],
    ["bad filter", { type: "sub", filter: "a/#/b" }, '"#" may only be the last level'],
    ["seq zero", { type: "pub", topic: "a", data: 1, origin: "o", seq: 0 }, 'field "seq": must be at least 1'],
    ["seq fraction", { type: "set", key: "a", value: 1, origin: "o", seq: 1.5 }, 'field "seq": must be a whole number'],
    ["data too big", { type: "pub", topic: "a", data: big, origin: "o", seq: 1 }, `at most 64 KiB of JSON (got ${MAX_DATA_BYTES + 2} bytes)`],
    ["data not JSON", { type: "pub", topic: "a", data: 10n, origin: "o", seq: 1 }, "must be a JSON value"],
    ["empty origin", { type: "pub", topic: "a", data: 1, origin: "", seq: 1 }, 'field "origin": must not be empty'],
    ["negative resume epoch", { type: "hello", id: "a", name: "b", kind: "node", resumeFromEpoch: -1 }, 'field "resumeFromEpoch": must be at least 0'],
    ["bad kind", { type: "hello", id: "a", name: "b", kind: "server" }, 'Frame "hello" refused, field "kind": Invalid option'],
    ["frame too big", JSON.stringify({ type: "pub", topic: "a", data: "y".repeat(MAX_FRAME_BYTES), origin: "o", seq: 1 }), "is more than the"],
  ];
  test.each(cases)("%s", (_what, input, expected) => {
    const parsed = parseToHubFrame(input);
    expect(parsed.ok).toBe(false);
    if (parsed.ok) return;
    expect(parsed.error.code).toBe("INVALID_FRAME");
    expect(parsed.error.message).toContain(expected);
  });

  test("a refused frame still names itself, so the sender can match the error", () => {
    const parsed = parseToHubFrame({ type: "pub", topic: "a/#", data: 1, origin: "app-a", seq: 4 });
    expect(parsed.ok ? null : parsed.ref).toEqual({ type: "pub", origin: "app-a", seq: 4 });
  });

  test("unknown fields are ignored (a newer peer may add some)", () => {
    expect(parseToHubFrame({ type: "sub", filter: "a", priority: 3 })).toEqual({ ok: true, frame: { type: "sub", filter: "a" } });
  });
});

test("sizes are UTF-8 bytes", () => {
  expect(utf8ByteLength("abc")).toBe(3);
  expect(utf8ByteLength("é")).toBe(2);
  expect(utf8ByteLength("€")).toBe(3);
  expect(utf8ByteLength("🎬")).toBe(4);
  expect(utf8ByteLength("a€🎬")).toBe(new TextEncoder().encode("a€🎬").length);
  expect(jsonByteLength({ a: "é" })).toBe(new TextEncoder().encode('{"a":"é"}').length);
  expect(jsonByteLength(undefined)).toBeNull();
});

describe("a short text is parsed without measuring its data again (SMALL_TEXT_BYTES)", () => {
  test("its data cannot outgrow MAX_DATA_BYTES, even made of the numbers that grow the most", () => {
    const numbers = Array.from({ length: Math.floor((SMALL_TEXT_BYTES - 60) / 5) }, () => "1e20").join(",");
    const text = `{"type":"pub","topic":"a","data":[${numbers}],"origin":"o","seq":1}`;
    expect(utf8ByteLength(text)).toBeLessThanOrEqual(SMALL_TEXT_BYTES);
    const parsed = parseToHubFrame(text);
    expect(parsed.ok).toBe(true);
    expect(jsonByteLength(parsed.ok ? parsed.frame.type === "pub" && parsed.frame.data : null)).toBeLessThanOrEqual(MAX_DATA_BYTES);
  });

  test("a missing data field is still refused, from text as from an object", () => {
    for (const input of ['{"type":"pub","topic":"a","origin":"o","seq":1}', '{"type":"msg","topic":"a","from":"o","seq":1}']) {
      const parsed = input.includes('"msg"') ? parseFromHubFrame(input) : parseToHubFrame(input);
      expect(parsed.ok ? "" : parsed.error.message).toContain('field "data": must be a JSON value');
    }
  });

  test("a longer text is measured: data over 64 KiB is refused", () => {
    const text = JSON.stringify({ type: "pub", topic: "a", data: "y".repeat(MAX_DATA_BYTES), origin: "o", seq: 1 });
    const parsed = parseToHubFrame(text);
    expect(parsed.ok ? "" : parsed.error.message).toContain("at most 64 KiB of JSON");
  });

  test("a text of few characters but many bytes is counted: over the frame limit in UTF-8 bytes, refused", () => {
    // 24,000 characters, 72,000 bytes: under MAX_FRAME_BYTES in characters, over it in bytes.
    const text = JSON.stringify({ type: "pub", topic: "a", data: "€".repeat(24_000), origin: "o", seq: 1 });
    expect(text.length).toBeLessThan(MAX_FRAME_BYTES);
    const parsed = parseToHubFrame(text);
    expect(parsed.ok ? "" : parsed.error.message).toMatch(/^Frame refused: 720\d\d bytes is more than the 69632 a frame may have\.$/);
  });

  test("data a caller says is measured (the MQTT door's, mqtt-payload.ts) is not encoded again; the rest of the frame is still checked", () => {
    const big = { type: "pub", topic: "a", data: "y".repeat(MAX_DATA_BYTES), origin: "o", seq: 1 };
    expect(parseToHubFrame(big).ok).toBe(false);
    expect(parseToHubFrame(big, true).ok).toBe(true);
    const badTopic = parseToHubFrame({ ...big, topic: "a/#" }, true);
    expect(badTopic.ok ? "" : badTopic.error.message).toContain('field "topic"');
    const noData = parseToHubFrame({ type: "pub", topic: "a", origin: "o", seq: 1 }, true);
    expect(noData.ok ? "" : noData.error.message).toContain('field "data": must be a JSON value');
  });
});

describe("data nests at most MAX_DATA_DEPTH levels, so no later hop refuses what a node took", () => {
  const nest = (depth: number): unknown => (depth === 0 ? 1 : { v: nest(depth - 1) });
  const pub = (data: unknown) => ({ type: "pub", topic: "t", data, origin: "o", seq: 7 });

  test("as a value and as text, refused with the frame named so the sender can match it", () => {
    expect(parseToHubFrame(pub(nest(MAX_DATA_DEPTH))).ok).toBe(true);
    expect(parseToHubFrame(JSON.stringify(pub(nest(MAX_DATA_DEPTH)))).ok).toBe(true);
    for (const input of [pub(nest(64)), JSON.stringify(pub(nest(64))), JSON.stringify(pub(nest(MAX_DATA_DEPTH + 1)))]) {
      const parsed = parseToHubFrame(input);
      if (parsed.ok) throw new Error("accepted");
      expect(parsed.error.message).toContain(`at most ${MAX_DATA_DEPTH} levels`);
      expect(parsed.ref).toMatchObject({ type: "pub", origin: "o", seq: 7 });
    }
  });
});
