/**
 * Seeded, bounded input generation for decoder fuzz tests: random JSON values
 * (deep, wide, odd strings and numbers), random bytes, and mutations of valid
 * inputs (flips, cuts, insertions, splices). `FUZZ_SEED=x` replays a run.
 */
import { seededRandom } from "../../src/net/crypto.ts";

export const FUZZ_SEED = process.env.FUZZ_SEED ?? "understudy fuzz 1";

export class Fuzz {
  private readonly bytes: (n: number) => Uint8Array;

  constructor(seed: string = FUZZ_SEED) {
    this.bytes = seededRandom(seed);
  }

  /** Uniform in [0, 1). */
  next(): number {
    const b = this.bytes(4);
    return (((b[0]! << 24) >>> 0) + (b[1]! << 16) + (b[2]! << 8) + b[3]!) / 2 ** 32;
  }

  int(below: number): number {
    return Math.floor(this.next() * below);
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }

  randomBytes(maxLength: number): Uint8Array {
    return this.bytes(this.int(maxLength + 1));
  }

  string(maxLength = 40): string {
    const alphabet = ["a", "Z", "/", "+", "#", "$", " ", "\"", "\\", "\u0000", "\u007f", "é", "\u{1F3AC}", "\ud800", ".", "..", "{", "[", ":"];
    let out = "";
    const length = this.int(maxLength + 1);
    for (let i = 0; i < length; i++) out += this.pick(alphabet);
    return out;
  }

  /** A JSON value; deep ones come from long chains, wide ones from long arrays. */
  json(depth = 0): unknown {
    const roll = this.int(depth > 6 ? 6 : 10);
    switch (roll) {
      case 0:
        return null;
      case 1:
        return this.next() < 0.5;
      case 2:
        return this.pick([0, -1, 1.5, 2 ** 53 + 1, -(2 ** 63), 1e308, 5e-324, this.int(1000)]);
      case 3:
      case 4:
        return this.string();
      case 5:
        return this.pick(["hello", "pub", "sub", "set", "get", "call", "reply", "ping", "welcome", "msg", "ack", "value", "presence", "error"]);
      case 6:
      case 7:
        return Array.from({ length: this.int(5) }, () => this.json(depth + 1));
      default: {
        const out: Record<string, unknown> = {};
        const keys = ["type", "topic", "filter", "data", "origin", "seq", "id", "key", "value", "service", "epoch", "version", "members", "$bytes", "__proto__", "constructor"];
        for (let i = this.int(6); i > 0; i--) out[this.pick(keys)] = this.json(depth + 1);
        return out;
      }
    }
  }

  /** Text of a JSON value, sometimes nested far deeper than any limit. */
  jsonText(): string {
    if (this.int(20) === 0) {
      const levels = 1 + this.int(40_000);
      return "[".repeat(levels) + "]".repeat(this.next() < 0.5 ? levels : this.int(levels));
    }
    return JSON.stringify(this.json()) ?? "null";
  }

  /** `input` altered: a bit flip, a cut, an insertion, a byte splice, or a doubling. */
  mutate(input: Uint8Array): Uint8Array {
    const out = new Uint8Array(input);
    switch (this.int(5)) {
      case 0: {
        if (out.length > 0) out[this.int(out.length)]! ^= 1 << this.int(8);
        return out;
      }
      case 1:
        return out.subarray(0, this.int(out.length + 1));
      case 2: {
        const at = this.int(out.length + 1);
        const extra = this.randomBytes(16);
        const grown = new Uint8Array(out.length + extra.length);
        grown.set(out.subarray(0, at));
        grown.set(extra, at);
        grown.set(out.subarray(at), at + extra.length);
        return grown;
      }
      case 3: {
        if (out.length > 0) out[this.int(out.length)] = this.pick([0x00, 0xff, 0x7b, 0x5b, 0x22, 0x5c]);
        return out;
      }
      default: {
        const doubled = new Uint8Array(out.length * 2);
        doubled.set(out);
        doubled.set(out, out.length);
        return doubled;
      }
    }
  }
}
