/**
 * The Videohub Ethernet protocol's text blocks, parsed with bounds
 * (docs/design.md §Render-engine backups): an ALL-CAPS header ending in ":"
 * (or a bare ACK / NAK), lines, a blank line. Ports are zero-based.
 *
 * The parser never grows past its limits: a line or a block too large is a
 * ROUTER_TOO_LARGE error (the stream cannot be trusted after it), a block
 * whose lines do not parse is a ROUTER_PROTOCOL error and changes nothing.
 */
import { RouterError, type LockState, type RouterSnapshot } from "../../core/router.ts";

export const MAX_LINE_CHARS = 1_024;
/** A 288×288 router's label block is 288 lines; leave room, refuse a flood. */
export const MAX_BLOCK_LINES = 2_048;
export const MAX_PORTS = 1_024;

export interface Block {
  header: string;
  lines: string[];
}

/** Splits a stream into blocks; call `feed` with each chunk. */
export class BlockParser {
  #partial = "";
  #header: string | null = null;
  #lines: string[] = [];

  /** The complete blocks in `chunk`; throws RouterError("ROUTER_TOO_LARGE") past the bounds. */
  feed(chunk: string): Block[] {
    const blocks: Block[] = [];
    const text = this.#partial + chunk;
    const parts = text.split("\n");
    this.#partial = parts.pop() ?? "";
    if (this.#partial.length > MAX_LINE_CHARS) throw tooLarge(`a line longer than ${MAX_LINE_CHARS} characters`);
    for (const raw of parts) {
      const line = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
      if (line.length > MAX_LINE_CHARS) throw tooLarge(`a line longer than ${MAX_LINE_CHARS} characters`);
      if (line === "") {
        if (this.#header !== null) blocks.push({ header: this.#header, lines: this.#lines });
        this.#header = null;
        this.#lines = [];
      } else if (this.#header === null) {
        this.#header = line;
      } else {
        if (this.#lines.length >= MAX_BLOCK_LINES) throw tooLarge(`a block of more than ${MAX_BLOCK_LINES} lines`);
        this.#lines.push(line);
      }
    }
    return blocks;
  }

  /** True while a block has begun and not ended (a half block when the connection drops). */
  get midBlock(): boolean {
    return this.#header !== null || this.#partial !== "";
  }
}

function tooLarge(what: string): RouterError {
  return new RouterError("ROUTER_TOO_LARGE", `the router sent ${what}: the connection is dropped and opened again`);
}

function protocol(message: string): RouterError {
  return new RouterError("ROUTER_PROTOCOL", `the router sent a block we cannot read (${message}); it was ignored`);
}

/** "key: value" lines of a device block. */
export function fields(block: Block): Map<string, string> {
  const map = new Map<string, string>();
  for (const line of block.lines) {
    const at = line.indexOf(":");
    if (at > 0) map.set(line.slice(0, at).trim(), line.slice(at + 1).trim());
  }
  return map;
}

function port(text: string, count: number, what: string): number {
  if (!/^\d{1,4}$/.test(text)) throw protocol(`${what} "${text.slice(0, 20)}" is not a port number`);
  const n = Number(text);
  if (n >= Math.min(count, MAX_PORTS)) throw protocol(`${what} ${n} is past the router's ${count} ports`);
  return n;
}

/** `<dest> <source>` lines; all or nothing. */
export function routingLines(block: Block, inputs: number, outputs: number): { destination: number; source: number }[] {
  return block.lines.map((line) => {
    const [d, s, extra] = line.split(" ");
    if (d === undefined || s === undefined || extra !== undefined) throw protocol(`routing line "${line.slice(0, 40)}"`);
    return { destination: port(d, outputs, "destination"), source: port(s, inputs, "source") };
  });
}

/** `<dest> <O|L|U>` lines; all or nothing. */
export function lockLines(block: Block, outputs: number): { destination: number; lock: LockState }[] {
  return block.lines.map((line) => {
    const [d, l, extra] = line.split(" ");
    if (d === undefined || extra !== undefined || (l !== "O" && l !== "L" && l !== "U")) throw protocol(`lock line "${line.slice(0, 40)}"`);
    return { destination: port(d, outputs, "destination"), lock: l };
  });
}

/** `<port> <label>` lines; all or nothing. */
export function labelLines(block: Block, count: number): { port: number; label: string }[] {
  return block.lines.map((line) => {
    const at = line.indexOf(" ");
    const p = at < 0 ? line : line.slice(0, at);
    return { port: port(p, count, "port"), label: at < 0 ? "" : line.slice(at + 1).slice(0, 128) };
  });
}

/** Router size from the `VIDEOHUB DEVICE:` block. */
export function deviceSize(block: Block): { model: string; inputs: number; outputs: number } {
  const f = fields(block);
  const inputs = Number(f.get("Video inputs"));
  const outputs = Number(f.get("Video outputs"));
  if (!Number.isInteger(inputs) || !Number.isInteger(outputs) || inputs < 0 || outputs < 0 || inputs > MAX_PORTS || outputs > MAX_PORTS) {
    throw protocol(`device block with ${f.get("Video inputs")} inputs and ${f.get("Video outputs")} outputs`);
  }
  return { model: f.get("Model name")?.slice(0, 128) ?? "Videohub", inputs, outputs };
}

export function emptySnapshot(model: string, inputs: number, outputs: number): RouterSnapshot {
  return {
    model,
    inputCount: inputs,
    outputCount: outputs,
    inputLabels: Array.from({ length: inputs }, () => ""),
    outputLabels: Array.from({ length: outputs }, () => ""),
    routes: Array.from({ length: outputs }, () => null),
    locks: Array.from({ length: outputs }, () => "U" as const),
  };
}

export const routeRequest = (destination: number, source: number) => `VIDEO OUTPUT ROUTING:\n${destination} ${source}\n\n`;
export const lockRequest = (destination: number, lock: "O" | "U" | "F") => `VIDEO OUTPUT LOCKS:\n${destination} ${lock}\n\n`;
export const PING_REQUEST = "PING:\n\n";
