/**
 * GET /identity for a test's bare Bun.serve peer: connectSecure asks it for the
 * upgrade-ticket challenge before dialing (upgrade-ticket.ts). Test servers
 * that do not check tickets take any; this one is fixed.
 */
import type { AppError } from "../../src/core/errors.ts";
import { fingerprint } from "../../src/core/keys.ts";
import { newServerSocketData, secureServerHandlers, type ConnectionEvents, type SecureSocketOptions, type ServerConnection } from "../../src/net/secure-socket.ts";

export function identityResponse(networkKey: Uint8Array): Response {
  return Response.json({ networkKeyFingerprint: fingerprint(networkKey), ticket: { id: "test-peer", nonce: "0".repeat(32) } });
}

/** The identity answer when `request` asks for it, else null. */
export function answerIdentity(request: Request, networkKey: Uint8Array): Response | null {
  return new URL(request.url).pathname === "/identity" ? identityResponse(networkKey) : null;
}

/**
 * A bare peer port for a test: answers GET /identity, upgrades every other request
 * (at `path`, or the request's own path), and hands each authenticated connection
 * to `accept`. `publish` lets its connections join Bun topics (the hub's fan-out).
 */
export function serveBarePeer(
  options: SecureSocketOptions,
  accept: (connection: ServerConnection, path: string) => ConnectionEvents,
  settings: { path?: string; publish?: boolean; onRefused?: (address: string, error: AppError) => void } = {},
) {
  return Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch(request, srv) {
      const identity = answerIdentity(request, options.networkKey);
      if (identity) return identity;
      const path = settings.path ?? new URL(request.url).pathname;
      const publish = settings.publish ? (topic: string, frame: Uint8Array) => srv.publish(topic, frame) : null;
      return srv.upgrade(request, { data: newServerSocketData(options, "client", path, null, publish) }) ? undefined : new Response("no", { status: 400 });
    },
    websocket: secureServerHandlers(options, accept, settings.onRefused ?? (() => {})),
  });
}
