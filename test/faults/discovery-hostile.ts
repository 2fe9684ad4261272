/**
 * A hostile responder for the discovery fault test: announces
 * `_understudy._tcp` services with malformed TXT records, broken names and
 * plain garbage, from port 5353 inside its namespace, plus two well-formed
 * services (`hostile-control`, `hostile-upper`) that must be listed, so the
 * test knows the bad ones were received too. Hand-made packets (not dnssd's
 * encoder) so any byte can be sent.
 *
 *   bun test/faults/discovery-hostile.ts --address 10.231.0.5 [--rounds 10] [--every-ms 300]
 */
import { createSocket } from "node:dgram";
import { parseArgs } from "node:util";
import { z } from "zod";

const { values } = parseArgs({
  args: Bun.argv.slice(2),
  options: { address: { type: "string" }, rounds: { type: "string", default: "10" }, "every-ms": { type: "string", default: "300" } },
  strict: true,
});
const flags = z
  .object({ address: z.ipv4(), rounds: z.coerce.number().int().min(1).max(100), "every-ms": z.coerce.number().int().min(10).max(5_000) })
  .parse(values);

const VALID_FINGERPRINT = "0123456789abcdef";
const SERVICE = "_understudy._tcp.local";
const TYPE = { A: 1, PTR: 12, TXT: 16, SRV: 33 } as const;

type TxtEntry = string | Uint8Array; // "key=value" as text, or raw bytes of one entry

function valid(name: string, id: string): Record<string, string> {
  return { txtvers: "1", id, name, role: "client", lic: "client", ver: "1.0.0", fp: VALID_FINGERPRINT, epoch: "1" };
}
function entries(fields: Record<string, string>): TxtEntry[] {
  return Object.entries(fields).map(([k, v]) => `${k}=${v}`);
}
function without(fields: Record<string, string>, key: string): Record<string, string> {
  const copy = { ...fields };
  delete copy[key];
  return copy;
}
const bytes = (...parts: (string | number[])[]) =>
  Buffer.concat(parts.map((p) => (typeof p === "string" ? Buffer.from(p, "utf8") : Buffer.from(p))));

/** Instance label → TXT entries. Only hostile-upper (keys are case-insensitive) and hostile-control are well-formed. */
const CASES: [string, TxtEntry[]][] = [
  ["hostile-upper", Object.entries(valid("hostile-upper", "00000000000000b2")).map(([k, v]) => `${k.toUpperCase()}=${v}`)],
  ["missing-fp", entries(without(valid("missing-fp", "00000000000000c1"), "fp"))],
  ["missing-txtvers", entries(without(valid("missing-txtvers", "00000000000000c2"), "txtvers"))],
  ["txtvers-2", entries({ ...valid("txtvers-2", "00000000000000c3"), txtvers: "2" })],
  ["long-name", entries({ ...valid("x".repeat(200), "00000000000000c4") })],
  ["bad-role", entries({ ...valid("bad-role", "00000000000000c5"), role: "god" })],
  ["bad-license", entries({ ...valid("bad-license", "00000000000000c6"), lic: "pirated" })],
  ["negative-epoch", entries({ ...valid("negative-epoch", "00000000000000c7"), epoch: "-1" })],
  ["huge-epoch", entries({ ...valid("huge-epoch", "00000000000000c8"), epoch: "9".repeat(40) })],
  ["float-epoch", entries({ ...valid("float-epoch", "00000000000000c9"), epoch: "1e3" })],
  ["short-id", entries(valid("short-id", "c10"))],
  ["upper-fp", entries({ ...valid("upper-fp", "00000000000000ca"), fp: "0123456789ABCDEF" })],
  ["bidi-name", entries(valid("\u202Eevil", "00000000000000cb"))],
  ["control-char", entries(valid("bell\u0007", "00000000000000cc"))],
  ["bad-utf8", [...entries(without(valid("", "00000000000000cd"), "name")), bytes("name=", [0xff, 0xfe, 0xc3])]],
  ["bare-keys", ["txtvers=1", "id", "name", "role=client", "lic=client", "ver=1", `fp=${VALID_FINGERPRINT}`, "epoch=1"]],
  ["empty-values", ["txtvers=1", "id=", "name=", "role=", "lic=", "ver=", "fp=", "epoch="]],
  ["proto-keys", ["__proto__=x", "constructor=y", "prototype=z", "txtvers=1", "name=proto-keys"]],
  ["no-txt", []],
  ["many-keys", Array.from({ length: 300 }, (_, i) => `k${i}=v`)],
  ["json-injection", entries(valid('"><script>alert(1)</script>', "00000000000000ce"))],
  // Last, so that when it is listed every case above has been taken in.
  ["hostile-control", entries(valid("hostile-control", "00000000000000b1"))],
];


function name(fqdn: string): Buffer {
  const labels = fqdn.split(/(?<!\\)\./).filter((l) => l.length > 0);
  return Buffer.concat([...labels.map((l) => Buffer.concat([Buffer.from([Buffer.byteLength(l)]), Buffer.from(l)])), Buffer.from([0])]);
}
function rr(owner: Buffer, type: number, ttl: number, rdata: Buffer, unique: boolean): Buffer {
  const head = Buffer.alloc(10);
  head.writeUInt16BE(type, 0);
  head.writeUInt16BE(unique ? 0x8001 : 0x0001, 2);
  head.writeUInt32BE(ttl, 4);
  head.writeUInt16BE(rdata.length, 8);
  return Buffer.concat([owner, head, rdata]);
}
function packet(answers: Buffer[]): Buffer {
  const header = Buffer.alloc(12);
  header.writeUInt16BE(0x8400, 2); // response, authoritative
  header.writeUInt16BE(answers.length, 6);
  return Buffer.concat([header, ...answers]);
}
function txtRdata(txt: TxtEntry[]): Buffer {
  if (txt.length === 0) return Buffer.from([0]);
  return Buffer.concat(
    txt.map((e) => {
      const b = typeof e === "string" ? Buffer.from(e, "utf8") : Buffer.from(e);
      const cut = b.subarray(0, 255);
      return Buffer.concat([Buffer.from([cut.length]), cut]);
    }),
  );
}
function announce(label: string, txt: TxtEntry[]): Buffer {
  const instance = name(`${label}.${SERVICE}`);
  const host = name(`h-${label.replace(/[^a-z0-9-]/gi, "x").slice(0, 40)}.local`);
  const srv = Buffer.alloc(6);
  srv.writeUInt16BE(7401, 4);
  const a = Buffer.from(flags.address.split(".").map(Number));
  return packet([
    rr(name(SERVICE), TYPE.PTR, 4500, instance, false),
    rr(instance, TYPE.SRV, 120, Buffer.concat([srv, host]), true),
    rr(instance, TYPE.TXT, 4500, txtRdata(txt), true),
    rr(host, TYPE.A, 120, a, true),
  ]);
}

/** Not even DNS: truncated, lying counts, a compression pointer to itself, names that point at odd places. */
function garbage(round: number): Buffer[] {
  const lyingCounts = Buffer.alloc(12);
  lyingCounts.writeUInt16BE(0x8400, 2);
  lyingCounts.writeUInt16BE(0xffff, 6);
  const loop = packet([Buffer.concat([Buffer.from([0xc0, 12]), Buffer.from([0, TYPE.PTR, 0, 1, 0, 0, 0, 120, 0, 2, 0xc0, 12])])]);
  const weirdPtr = packet([rr(name(SERVICE), TYPE.PTR, 4500, name("no-protocol-here.local"), false)]);
  const emptyPtr = packet([rr(name(SERVICE), TYPE.PTR, 4500, Buffer.from([0]), false)]);
  const random = Buffer.from(Array.from({ length: 64 + ((round * 97) % 500) }, (_, i) => (i * 31 + round * 17) & 0xff));
  return [Buffer.alloc(0), Buffer.from([0x84]), lyingCounts, loop, weirdPtr, emptyPtr, random];
}

const socket = createSocket({ type: "udp4", reuseAddr: true });
socket.on("error", (error) => {
  console.error(`hostile: ${error.message}`);
  process.exit(1);
});
socket.bind({ port: 5353, address: "0.0.0.0" }, async () => {
  socket.setMulticastInterface(flags.address);
  socket.setMulticastTTL(255);
  const send = (b: Buffer) => new Promise<void>((resolve) => socket.send(b, 5353, "224.0.0.251", () => resolve()));
  for (let round = 0; round < flags.rounds; round++) {
    for (const g of garbage(round)) await send(g);
    for (const [label, txt] of CASES) await send(announce(label, txt));
    await Bun.sleep(flags["every-ms"]);
  }
  console.log(`hostile: sent ${flags.rounds} rounds of ${CASES.length} services`);
  socket.close();
  process.exit(0);
});
