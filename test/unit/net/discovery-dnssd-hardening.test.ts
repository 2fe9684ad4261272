/**
 * dnssd 0.4.1 looped forever on a DNS name whose compression pointer points at
 * itself. After hardenDnssd() such packets are dropped (isValid() false) at
 * once, and well-formed packets, compressed ones included, still parse.
 */
import { beforeAll, describe, expect, test } from "bun:test";
import Packet from "dnssd/lib/Packet.js";
import { hardenDnssd } from "../../../src/net/discovery/dnssd-hardening.ts";

const ORIGIN = { address: "10.0.0.5", port: 5353 };
const PTR = 12;

function header(answers: number): Buffer {
  const h = Buffer.alloc(12);
  h.writeUInt16BE(0x8400, 2);
  h.writeUInt16BE(answers, 6);
  return h;
}
function labels(...parts: string[]): Buffer {
  return Buffer.concat([...parts.map((p) => Buffer.concat([Buffer.from([p.length]), Buffer.from(p)])), Buffer.from([0])]);
}
/** An answer whose owner name is `owner` (raw bytes) and rdata a PTR to `target` (raw bytes). */
function ptr(owner: Buffer, target: Buffer): Buffer {
  const fixed = Buffer.alloc(10);
  fixed.writeUInt16BE(PTR, 0);
  fixed.writeUInt16BE(1, 2);
  fixed.writeUInt32BE(120, 4);
  fixed.writeUInt16BE(target.length, 8);
  return Buffer.concat([owner, fixed, target]);
}

beforeAll(() => hardenDnssd());

describe("hardened dnssd name reader", () => {
  const hostile: [string, Buffer][] = [
    ["a pointer to itself", Buffer.concat([header(1), ptr(Buffer.from([0xc0, 12]), Buffer.from([0xc0, 12]))])],
    ["a pointer forwards", Buffer.concat([header(1), ptr(Buffer.from([0xc0, 40]), labels("x"))])],
    // offset 12: label "a", then a (backward) pointer to 12: "a.a.a.a…" forever.
    ["a label looping through a backward pointer", Buffer.concat([header(1), Buffer.from([1, 0x61, 0xc0, 12])])],
    ["a label longer than 63 bytes", Buffer.concat([header(1), ptr(Buffer.concat([Buffer.from([100]), Buffer.alloc(100, 0x61), Buffer.from([0])]), labels("x"))])],
    ["a name longer than 255 bytes", Buffer.concat([header(1), ptr(labels(...Array(5).fill("a".repeat(60))), labels("x"))])],
    ["a name cut off by the end of the packet", Buffer.concat([header(1), Buffer.from([5, 0x61, 0x62])])],
    ["a pointer cut in half", Buffer.concat([header(1), Buffer.from([0xc0])])],
  ];
  test.each(hostile)("drops %s, quickly", (_, bytes) => {
    const started = performance.now();
    const packet = new Packet(bytes, ORIGIN);
    expect(packet.isValid()).toBe(false);
    expect(performance.now() - started).toBeLessThan(100);
  });

  test("reads well-formed names, with backward compression pointers", () => {
    const service = labels("_understudy", "_tcp", "local"); // at offset 12
    const instance = Buffer.concat([Buffer.from([8]), Buffer.from("Render 1"), Buffer.from([0xc0, 12])]);
    const bytes = Buffer.concat([header(1), ptr(service, instance)]);
    const packet = new Packet(bytes, ORIGIN);
    expect(packet.isValid()).toBe(true);
    expect(packet.answers[0]?.name).toBe("_understudy._tcp.local.");
    expect(packet.answers[0]?.PTRDName).toBe("Render 1._understudy._tcp.local.");
  });

  test("is idempotent", () => {
    expect(() => hardenDnssd()).not.toThrow();
  });
});
