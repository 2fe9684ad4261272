/**
 * What the heartbeat socket needs of a bound UDP socket, and the socket bound on this thread
 * (Bun.udpSocket directly). The heartbeat socket owns its port through a thread of its own
 * (udp-thread.ts); this one is its fallback when that thread cannot start or dies, so that a
 * healthy machine never goes silent because of the thread.
 */
import { isIP } from "node:net";
import type { HostPort } from "../core/config.ts";

/** What the socket hands up: datagrams, and errors of sends (target known) or of the socket (target unknown: a refusal the kernel reports later). */
export type UdpHandlers = {
  receive(data: Uint8Array, from: HostPort, truncated: boolean): void;
  sendError(error: unknown, target: HostPort): void;
  socketError(error: unknown): void;
};

/** A bound UDP socket, wherever it runs. */
export interface UdpPort {
  readonly port: number;
  readonly host: string;
  /** Sends `datagram` to every target (IP addresses); failures go to `sendError`, never thrown. Returns how many were handed on (to the kernel, or to the socket's thread). */
  send(datagram: Uint8Array, targets: readonly HostPort[]): number;
  /** Closes the socket; resolves once its port is free. */
  close(): Promise<void>;
}

/**
 * A target Bun's UDP send would refuse at once (it takes no host names): refused here, so the
 * caller learns it at once wherever the socket runs.
 */
export function notAnAddress(target: HostPort): Error | null {
  return isIP(target.host) === 0 ? new Error(`${target.host} is not an IP address (UDP sends take no host names)`) : null;
}

/** Binds `host:port` on this thread; a failed bind throws Bun's error (with its `code`) for listenError. */
export async function bindOnThisThread(host: string, port: number, handlers: UdpHandlers): Promise<UdpPort> {
  const socket = await Bun.udpSocket({
    hostname: host,
    port,
    binaryType: "uint8array",
    socket: {
      data: (_socket, data, fromPort, address, flags) => handlers.receive(data, { host: address, port: fromPort }, flags.truncated),
      // Without this handler Bun 1.4 exits the process on the ICMP "port unreachable" a send to a dead
      // peer brings back — exactly when the main is down. It passes only the error, despite the typings.
      error: (...args: unknown[]) => handlers.socketError(args[args.length - 1]),
    },
  });
  return {
    port: socket.port,
    host: socket.hostname,
    send(datagram, targets) {
      let sent = 0;
      for (const target of targets) {
        const error = notAnAddress(target) ?? sendOnce(socket, datagram, target.port, target.host);
        if (error === null) sent++;
        else handlers.sendError(error, target);
      }
      return sent;
    },
    close() {
      socket.close();
      return Promise.resolve();
    },
  };
}

/**
 * One datagram; null when the kernel took it. Self-contained (it names nothing outside itself):
 * the socket thread's source embeds this very function (udp-thread.ts), so both send alike.
 */
export function sendOnce(socket: { send(data: Uint8Array, port: number, host: string): boolean }, datagram: Uint8Array, port: number, host: string): unknown {
  let error: unknown = null;
  for (let attempt = 0; attempt < 2; attempt++) {
    error = null;
    try {
      if (!socket.send(datagram, port, host)) error = new Error("the send buffer is full");
      break;
    } catch (thrown) {
      error = thrown;
      // Linux hands the ICMP refusal of an earlier send (to a dead peer) back on the next send,
      // whatever its target, and that datagram is not sent. Reporting it clears it: send again once.
      if ((thrown as { code?: string } | null)?.code !== "ECONNREFUSED") break;
    }
  }
  return error;
}
