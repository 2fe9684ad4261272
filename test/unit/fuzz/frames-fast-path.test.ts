/**
 * The hand-written check of `pub`, `msg`, `ack` and `presence` (src/hub/frames.ts readCommonFrame) runs
 * before zod and must be exactly as strict: on random and hostile frames it accepts only what the
 * schema accepts, giving the same frame (same fields, same order), and every frame the schema
 * refuses is refused by parseToHubFrame / parseFromHubFrame with the schema's own message.
 * FUZZ_SEED=x replays.
 */
import { describe, expect, test } from "bun:test";
import type { z } from "zod";
import { ackFrame, MAX_DATA_BYTES, MAX_FRAME_BYTES, MAX_FROM_HUB_FRAME_BYTES, MAX_PRESENCE_MEMBERS, presenceFrame, MAX_DATA_DEPTH, msgFrame, parseFromHubFrame, parseToHubFrame, pubFrame, readCommonFrame, SMALL_TEXT_BYTES, utf8ByteLength, toHubSchemasForSmallText, fromHubSchemasForSmallText } from "../../../src/hub/frames.ts";
import { nestingExceeds } from "../../../src/core/wire-json.ts";
import { Fuzz, FUZZ_SEED } from "../../support/fuzz.ts";

const RUNS = 1500;
const SAFE = Number.MAX_SAFE_INTEGER;

/** A frame as an in-process app or the server's own link hands it over (a value, not text). */
function hostileValue(fuzz: Fuzz): Record<string, unknown> {
  const frame = hostileFrame(fuzz);
  // What only a value can hold: a field present but undefined, data that is not JSON.
  if (fuzz.int(8) === 0) frame[fuzz.pick(["pos", "version", "data", "topic", "seq"])] = undefined;
  if (fuzz.int(10) === 0) frame.data = fuzz.pick<unknown>([10n, () => 1, Symbol("s"), cyclic(), new Date(0), { toJSON: () => "x" }, new Map()]);
  if (fuzz.int(10) === 0 && Array.isArray(frame.members) && frame.members.length > 0) {
    const members = frame.members as unknown[];
    if (fuzz.int(2) === 0) delete members[fuzz.int(members.length)];
    else members.push(fuzz.pick<unknown>([{ id: "a", name: "", kind: "app" }, { id: "a", name: "", kind: "app", delayMs: undefined }, { id: "a", name: "", kind: "node", delayMs: Number.NaN }]));
  }
  if (fuzz.int(20) === 0) return Object.assign(Object.create({ topic: "inherited/topic" }), frame);
  return frame;
}

function cyclic(): unknown {
  const a: Record<string, unknown> = {};
  a.self = a;
  return a;
}

function hostileFrame(fuzz: Fuzz): Record<string, unknown> {
  const long = (n: number, unit = "a") => unit.repeat(n);
  const strings = ["", "a", "studio/cam1/tally", "a//b", "/", "$SYS/x", "a/+", "a/#", "#", "+", "a\u0000b", "\ud800", "é", long(128), long(129), long(256), long(257), long(64, "\u{1F3AC}"), long(65, "\u{1F3AC}"), fuzz.string(300)];
  const numbers = [0, -0, 1, -1, 1.5, 2, SAFE, SAFE + 1, SAFE + 2, -SAFE, 1e308, 5e-324, fuzz.int(1000)];
  const any = () => fuzz.pick<unknown>([...strings, ...numbers, null, true, false, [], {}, [1], { epoch: 0 }, fuzz.json(), "1", "0"]);
  const maybe = (make: () => unknown) => (fuzz.int(8) === 0 ? any() : fuzz.int(12) === 0 ? undefined : make());
  const version = () =>
    fuzz.int(6) === 0
      ? any()
      : { epoch: maybe(() => fuzz.int(3)), seq: maybe(() => fuzz.pick(numbers)), ...(fuzz.int(3) === 0 ? { extra: any() } : {}) };
  const member = () =>
    fuzz.int(10) === 0
      ? any()
      : {
          id: maybe(() => fuzz.pick(strings)),
          name: maybe(() => fuzz.pick(strings)),
          kind: maybe(() => fuzz.pick(["app", "node", "App", ""])),
          delayMs: maybe(() => fuzz.pick<unknown>([null, ...numbers, -1e-9])),
          ...(fuzz.int(4) === 0 ? { extra: any() } : {}),
        };
  const frame: Record<string, unknown> = {
    type: fuzz.int(10) === 0 ? fuzz.pick(["PUB", "pub ", "set", "hello", "value", "error", "", 1, null]) : fuzz.pick(["pub", "msg", "ack", "presence"]),
    topic: maybe(() => fuzz.pick(strings)),
    data: maybe(() => fuzz.json()),
    origin: maybe(() => fuzz.pick(strings)),
    from: maybe(() => fuzz.pick(strings)),
    seq: maybe(() => fuzz.pick(numbers)),
    pos: fuzz.int(2) === 0 ? undefined : maybe(() => fuzz.pick(numbers)),
    version: fuzz.int(2) === 0 ? undefined : version(),
    members: maybe(() => Array.from({ length: fuzz.int(150) === 0 ? MAX_PRESENCE_MEMBERS + fuzz.int(2) : fuzz.int(4) }, member)),
  };
  if (fuzz.int(6) === 0) frame[fuzz.pick(["extra", "id", "key", "filter", "constructor", "toString"])] = any();
  // Data past the short-text bound (measured again) or past the limit; too deep.
  if (fuzz.int(40) === 0) frame.data = "x".repeat(fuzz.pick([SMALL_TEXT_BYTES, MAX_DATA_BYTES - 2, MAX_DATA_BYTES - 1]));
  if (fuzz.int(12) === 0) frame.data = nested(fuzz.pick([MAX_DATA_DEPTH - 1, MAX_DATA_DEPTH, MAX_DATA_DEPTH + 1]));
  return frame;
}

function nested(depth: number): unknown {
  let value: unknown = 1;
  for (let i = 0; i < depth; i++) value = i % 2 === 0 ? [value] : { v: value };
  return value;
}

/** A frame as text off the wire, hostile in ways only text can be. */
function hostileText(fuzz: Fuzz): string {
  let text = JSON.stringify(hostileFrame(fuzz));
  // An own "__proto__" field (JSON.parse makes one), and a repeated field (the last one counts).
  if (fuzz.int(10) === 0) text = text.replace(/^\{/, `{"__proto__":${JSON.stringify(fuzz.json())},`);
  if (fuzz.int(10) === 0) text = text.replace(/\}$/, `,"seq":${JSON.stringify(fuzz.json())}}`);
  return text;
}

const schemas: Record<string, z.ZodType> = { pub: pubFrame, msg: msgFrame, ack: ackFrame, presence: presenceFrame };

describe(`the common frames' fast path (FUZZ_SEED=${JSON.stringify(FUZZ_SEED)})`, () => {
  test("accepts only what the schema accepts, as the schema gives it; refusals keep the schema's message", () => {
    const fuzz = new Fuzz(`${FUZZ_SEED} frames fast path`);
    const seen = { fast: 0, refused: 0 };
    for (let i = 0; i < RUNS; i++) {
      const text = hostileText(fuzz);
      for (const [direction, parse, types, maxBytes] of [
        ["to hub", parseToHubFrame, ["pub"], MAX_FRAME_BYTES],
        ["from hub", parseFromHubFrame, ["msg", "ack", "presence"], MAX_FROM_HUB_FRAME_BYTES],
      ] as const) {
        const value = JSON.parse(text) as { type?: unknown };
        const short = utf8ByteLength(text) <= SMALL_TEXT_BYTES;
        const fast = readCommonFrame(value, direction, short);
        // The schema the parser applies: for a short text, the one that does not measure the data again.
        const forText = short ? (direction === "to hub" ? toHubSchemasForSmallText : fromHubSchemasForSmallText) : schemas;
        const own = typeof value.type === "string" && (types as readonly string[]).includes(value.type) ? (forText as Record<string, z.ZodType>)[value.type]! : null;
        const bySchema = own?.safeParse(JSON.parse(text));
        if (fast !== null) {
          seen.fast++;
          expect(bySchema?.success, `${direction}: fast path took what the schema refuses: ${text}`).toBe(true);
          expect(JSON.stringify(fast)).toBe(JSON.stringify(bySchema!.data));
          expect(fast).toEqual(bySchema!.data as never);
        }
        const parsed = parse(text);
        // Too big or too deep a text is refused before any schema, as it was.
        if (utf8ByteLength(text) > maxBytes || nestingExceeds(text, MAX_DATA_DEPTH + 1)) {
          expect(parsed.ok).toBe(false);
          continue;
        }
        if (!bySchema) continue;
        expect(parsed.ok, `${direction}: ${text}`).toBe(bySchema.success);
        if (parsed.ok) {
          expect(JSON.stringify(parsed.frame)).toBe(JSON.stringify(bySchema.data));
        } else {
          seen.refused++;
          expectSchemaRefusal(parsed.error.message, value, bySchema);
        }
      }
    }
    // Both sides of the boundary were really exercised.
    expect(seen.fast).toBeGreaterThan(RUNS / 50);
    expect(seen.refused).toBeGreaterThan(RUNS / 2);
  }, 60_000);

  test("frames handed over as values: the same, data measured as the schema measures it", () => {
    const fuzz = new Fuzz(`${FUZZ_SEED} frames fast path values`);
    const seen = { fast: 0, refused: 0 };
    for (let i = 0; i < RUNS; i++) {
      const value = hostileValue(fuzz);
      for (const [direction, parse, types] of [
        ["to hub", parseToHubFrame, ["pub"]],
        ["from hub", parseFromHubFrame, ["msg", "ack", "presence"]],
      ] as const) {
        const fast = readCommonFrame(value, direction, false);
        const own = typeof value.type === "string" && (types as readonly string[]).includes(value.type) ? schemas[value.type]! : null;
        const bySchema = own?.safeParse(value);
        if (fast !== null) {
          seen.fast++;
          expect(bySchema?.success, `${direction}: fast path took what the schema refuses: ${Bun.inspect(value)}`).toBe(true);
          expect(Object.keys(fast)).toEqual(Object.keys(bySchema!.data as object));
          expect(fast).toStrictEqual(bySchema!.data as never);
        }
        const parsed = parse(value);
        if (!bySchema) continue;
        expect(parsed.ok, `${direction}: ${Bun.inspect(value)}`).toBe(bySchema.success);
        if (parsed.ok) {
          expect(Object.keys(parsed.frame)).toEqual(Object.keys(bySchema.data as object));
          expect(parsed.frame).toStrictEqual(bySchema.data as never);
        } else {
          seen.refused++;
          expectSchemaRefusal(parsed.error.message, value, bySchema);
        }
      }
    }
    expect(seen.fast).toBeGreaterThan(RUNS / 50);
    expect(seen.refused).toBeGreaterThan(RUNS / 2);
  }, 60_000);

  test("presence at its member limit is taken; one more is refused with the schema's message", () => {
    const members = (n: number) => Array.from({ length: n }, (_, i) => ({ id: `m${i}`, name: "", kind: "app", delayMs: null }));
    const full = { type: "presence", members: members(MAX_PRESENCE_MEMBERS) };
    expect(readCommonFrame(full, "from hub", false)).toStrictEqual(presenceFrame.parse(full) as never);
    const over = JSON.stringify({ type: "presence", members: members(MAX_PRESENCE_MEMBERS + 1) });
    expect(readCommonFrame(JSON.parse(over), "from hub", false)).toBeNull();
    const refused = parseFromHubFrame(over);
    expect(refused.ok).toBe(false);
    expect(refused.ok ? "" : refused.error.message).toBe(`Frame "presence" refused, field "members": ${presenceFrame.safeParse(JSON.parse(over)).error!.issues[0]!.message}.`);
  });

  test("frames sent the other way are left to the schema", () => {
    expect(readCommonFrame({ type: "msg", topic: "a", data: 1, from: "x", seq: 1 }, "to hub", true)).toBeNull();
    expect(readCommonFrame({ type: "pub", topic: "a", data: 1, origin: "x", seq: 1 }, "from hub", true)).toBeNull();
    expect(parseFromHubFrame(JSON.stringify({ type: "pub", topic: "a", data: 1, origin: "x", seq: 1 })).ok).toBe(false);
    expect(parseToHubFrame(JSON.stringify({ type: "ack", origin: "x", seq: 1 })).ok).toBe(false);
  });
});

/** The refusal names the frame, the field and the schema's own message, whichever path read it. */
function expectSchemaRefusal(message: string, value: { type?: unknown }, bySchema: { error?: { issues: { path: PropertyKey[]; message: string }[] } }): void {
  const issue = bySchema.error!.issues[0]!;
  const where = issue.path.length > 0 ? `, field "${issue.path.join(".")}"` : "";
  expect(message).toBe(`Frame "${value.type as string}" refused${where}: ${issue.message}.`);
}
