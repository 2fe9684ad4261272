/**
 * Fixes a denial of service in dnssd 0.4.1 (pinned in package.json), applied
 * in-process before discovery starts.
 *
 * Its name reader (BufferWrapper.readFQDN) follows DNS compression pointers
 * with no limit, so one small mDNS packet whose name points at itself spins
 * the event loop forever: every machine on the link would freeze, failover
 * included. This reader follows at most MAX_POINTER_JUMPS pointers, only
 * backwards (RFC 1035 §4.1.4: a pointer refers to a prior occurrence), and
 * refuses names longer than 255 bytes or labels longer than 63. dnssd wraps
 * packet parsing in try/catch, so a throw here just drops the packet.
 */
import BufferWrapper from "dnssd/lib/BufferWrapper.js";

/** Real names need a handful; a loop would need unboundedly many. */
export const MAX_POINTER_JUMPS = 32;
/** RFC 1035 §2.3.4. */
export const MAX_NAME_BYTES = 255;
export const MAX_LABEL_BYTES = 63;
const POINTER = 0xc0;

export class MalformedDnsName extends Error {
  constructor(message: string) {
    super(`malformed DNS name: ${message}`);
    this.name = "MalformedDnsName";
  }
}

interface Wrapper {
  buffer: Buffer;
  position: number;
  readUInt8(): number;
  readString(len: number): string;
  seek(position: number): void;
}

/** Same result as dnssd's readFQDN on well-formed input; throws MalformedDnsName instead of looping. */
function readFQDN(this: Wrapper): string {
  const labels: string[] = [];
  let resumeAt: number | undefined;
  let jumps = 0;
  let bytes = 1; // the root label
  for (;;) {
    const at = this.position;
    if (at >= this.buffer.length) throw new MalformedDnsName("runs past the end of the packet");
    const len = this.readUInt8();
    if (len === 0) break;
    if (len >= POINTER) {
      if (this.position >= this.buffer.length) throw new MalformedDnsName("pointer cut short");
      const target = ((len & 0x3f) << 8) | this.readUInt8();
      if (target >= at) throw new MalformedDnsName("compression pointer does not point backwards");
      if (++jumps > MAX_POINTER_JUMPS) throw new MalformedDnsName("too many compression pointers");
      resumeAt ??= this.position;
      this.seek(target);
      continue;
    }
    if (len > MAX_LABEL_BYTES) throw new MalformedDnsName(`label of ${len} bytes`);
    bytes += len + 1;
    if (bytes > MAX_NAME_BYTES) throw new MalformedDnsName(`longer than ${MAX_NAME_BYTES} bytes`);
    if (this.position + len > this.buffer.length) throw new MalformedDnsName("label runs past the end of the packet");
    labels.push(this.readString(len));
  }
  if (resumeAt !== undefined) this.seek(resumeAt);
  return `${labels.join(".")}.`;
}

let applied = false;

/** Installs the bounded name reader into dnssd (once per process). */
export function hardenDnssd(): void {
  if (applied) return;
  const proto = (BufferWrapper as unknown as { prototype: { readFQDN: unknown } }).prototype;
  if (typeof proto.readFQDN !== "function") {
    throw new Error("dnssd's BufferWrapper.readFQDN is missing: this hardening is written for dnssd 0.4.1");
  }
  proto.readFQDN = readFQDN;
  applied = true;
}
