/**
 * The one JSON decoder for input from outside this process (peer frames, hub
 * frames, heartbeats, rpc, request bodies): a size limit checked before
 * decoding and a nesting limit checked by one linear scan before JSON.parse,
 * so no message can cost the main thread more than its bytes' worth (a 64 KB
 * array nested 32,000 deep stalled the main for a second, in later stringify
 * calls). Bytes travel as {"$bytes": base64} where a lane asks for them.
 */
import { AppError } from "./errors.ts";

/** Deeper than any frame or document this program makes; hub data rarely goes past a handful. */
export const DEFAULT_MAX_JSON_DEPTH = 64;

export type WireJsonLimits = {
  maxBytes: number;
  maxDepth?: number;
  /** Turn {"$bytes": base64} back into Uint8Array (the replication lanes); off for data that apps own. */
  bytes?: boolean;
};

/** Outside JSON refused: too big, too deep, not UTF-8 or not JSON. Nothing from it was used. */
export class InvalidWireJson extends AppError {
  constructor(message: string) {
    super("WIRE_JSON", message, { status: 400 });
    this.name = "InvalidWireJson";
  }
}

const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

export function encodeWireJson(value: unknown): Uint8Array {
  return new TextEncoder().encode(
    JSON.stringify(value, (_key, v) => (v instanceof Uint8Array ? { $bytes: Buffer.from(v).toString("base64") } : v)),
  );
}

/** Parses `input` within `limits`; throws InvalidWireJson. */
export function readWireJson(input: Uint8Array | string, limits: WireJsonLimits): unknown {
  const size = typeof input === "string" ? utf8Length(input, limits.maxBytes) : input.length;
  if (size > limits.maxBytes) throw new InvalidWireJson(`A message of ${size} bytes is more than the ${limits.maxBytes} allowed here.`);
  let text: string;
  try {
    text = typeof input === "string" ? input : strictUtf8.decode(input);
  } catch {
    throw new InvalidWireJson("A message is not UTF-8 text.");
  }
  const maxDepth = limits.maxDepth ?? DEFAULT_MAX_JSON_DEPTH;
  if (nestingExceeds(text, maxDepth)) throw new InvalidWireJson(`A message nests deeper than ${maxDepth} levels.`);
  try {
    return limits.bytes ? JSON.parse(text, reviveBytes) : JSON.parse(text);
  } catch {
    throw new InvalidWireJson("A message is not valid JSON.");
  }
}

/** Like readWireJson, but `undefined` when refused: every zod object schema then refuses it too. */
export function decodeWireJson(input: Uint8Array | string, limits: WireJsonLimits): unknown {
  try {
    return readWireJson(input, limits);
  } catch {
    return undefined;
  }
}

function reviveBytes(_key: string, v: unknown): unknown {
  if (v === null || typeof v !== "object") return v;
  const o = v as { $bytes?: unknown };
  return typeof o.$bytes === "string" && Object.keys(o).length === 1 ? new Uint8Array(Buffer.from(o.$bytes, "base64")) : v;
}

/** True when brackets outside strings nest deeper than `max`. Linear, no allocation; malformed text is left to JSON.parse. */
export function nestingExceeds(text: string, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) return true;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return false;
}

/** UTF-8 length, stopping early once past `stopAbove` (a huge string is refused without a full count). */
function utf8Length(text: string, stopAbove: number): number {
  return text.length > stopAbove ? text.length : utf8ByteLength(text);
}

/** UTF-8 length without allocating (this runs for every hub frame). */
export function utf8ByteLength(text: string): number {
  let bytes = text.length;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code >= 0x80) bytes += code >= 0x800 && (code < 0xd800 || code > 0xdfff) ? 2 : 1;
  }
  return bytes;
}
