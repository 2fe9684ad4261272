/**
 * A SecureConnection without a socket, for unit tests of what a service sends on a connection and
 * when it closes it: `sent` holds every frame of every payload (payloads are "\n"-joined frames),
 * `closedBy` the reason of the close, and the close reaches `events` as a real one would.
 */
import type { ConnectionEvents, SecureConnection } from "../../src/net/secure-socket.ts";

const decoder = new TextDecoder();

export class RecordingConnection implements SecureConnection {
  open = true;
  closedBy: string | null = null;
  readonly sent: string[] = [];
  readonly peer: SecureConnection["peer"];

  constructor(
    public events: ConnectionEvents | null = null,
    machineId = "m",
  ) {
    this.peer = { machineId, publicKey: new Uint8Array(32), address: machineId } as SecureConnection["peer"];
  }

  send(payload: Uint8Array): boolean {
    if (this.open) this.sent.push(...decoder.decode(payload).split("\n"));
    return this.open;
  }
  sendSealed(): boolean {
    return this.open;
  }
  sendBulk(): boolean {
    return this.open;
  }
  close(code?: number, reason = "closing"): void {
    if (!this.open) return;
    this.open = false;
    this.closedBy = reason;
    this.events?.close(reason, code);
  }
  /** The other side closes. */
  lost(reason: string, code = 1001): void {
    this.close(code, reason);
  }
}
