import { describe, expect, test } from "bun:test";
import { decodeWireJson, encodeWireJson, nestingExceeds, readWireJson, DEFAULT_MAX_JSON_DEPTH } from "../../../src/core/wire-json.ts";
import { parseToHubFrame } from "../../../src/hub/frames.ts";

const deep = (levels: number) => "[".repeat(levels) + "]".repeat(levels);

describe("the outside-JSON decoder", () => {
  test("a 64 KB message nested 32,000 deep is refused before JSON.parse (it stalled the main under load)", () => {
    const text = deep(32_000);
    expect(text.length).toBe(64_000);
    expect(() => readWireJson(text, { maxBytes: 70_000 })).toThrow(`nests deeper than ${DEFAULT_MAX_JSON_DEPTH} levels`);
  });

  test("a hub pub whose data nests 32,000 deep is refused, though within the size limit", () => {
    const frame = `{"type":"pub","topic":"a/b","origin":"app","seq":1,"data":${deep(32_000)}}`;
    const parsed = parseToHubFrame(frame);
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) expect(parsed.error.message).toContain("must nest at most");
  });

  test.each([
    ["too big", new Uint8Array(11).fill(0x20), "more than the 10 allowed"],
    ["not UTF-8", new Uint8Array([0x22, 0xff, 0x22]), "not UTF-8"],
    ["not JSON", new TextEncoder().encode("{"), "not valid JSON"],
  ])("%s is refused with its reason", (_name, bytes, reason) => {
    expect(() => readWireJson(bytes, { maxBytes: 10 })).toThrow(reason);
    expect(decodeWireJson(bytes, { maxBytes: 10 })).toBeUndefined();
  });

  test("brackets inside strings and escaped quotes do not count as nesting", () => {
    expect(nestingExceeds(JSON.stringify({ a: "[[[[[[[[\\\"[[[[" }), 2)).toBe(false);
    expect(nestingExceeds('[[["\\\\"]]]', 3)).toBe(false);
    expect(nestingExceeds('[[["\\\\"]]]', 2)).toBe(true);
  });

  test("bytes come back as Uint8Array only where the lane asks for them", () => {
    const encoded = encodeWireJson({ blob: new Uint8Array([1, 2, 3]) });
    expect(readWireJson(encoded, { maxBytes: 100, bytes: true })).toEqual({ blob: new Uint8Array([1, 2, 3]) });
    expect(readWireJson(encoded, { maxBytes: 100 })).toEqual({ blob: { $bytes: "AQID" } });
  });
});
