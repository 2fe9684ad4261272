/**
 * A test's bare Bun.serve peer port: answers GET /identity with a challenge and
 * takes upgrades that carry a proof made for it (handshake.ts), as the real
 * PeerEndpoint does, without its limits or refusal log.
 */
import type { AppError } from "../../src/core/errors.ts";
import { fingerprint } from "../../src/core/keys.ts";
import { answerUpgrade } from "../../src/net/handshake.ts";
import { newServerSocketData, secureServerHandlers, type ConnectionEvents, type SecureSocketOptions, type ServerConnection } from "../../src/net/secure-socket.ts";
import { systemClock } from "../../src/net/system-time.ts";
import { UpgradeChallenges } from "../../src/net/upgrade-challenge.ts";

/**
 * A bare peer port for a test: answers GET /identity, upgrades every other request
 * that carries a valid proof (at `path`, or the request's own path), and hands each
 * authenticated connection to `accept`. `publish` lets its connections join Bun topics (the hub's fan-out).
 */
export function serveBarePeer(
  options: SecureSocketOptions,
  accept: (connection: ServerConnection, path: string) => ConnectionEvents,
  settings: { path?: string; publish?: boolean; onRefused?: (address: string, error: AppError) => void } = {},
) {
  const challenges = new UpgradeChallenges(fingerprint(options.machine.publicKey), systemClock);
  const onRefused = settings.onRefused ?? (() => {});
  return Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch(request, srv) {
      const url = new URL(request.url);
      if (url.pathname === "/identity") return Response.json({ networkKeyFingerprint: fingerprint(options.networkKey), challenge: challenges.challenge() });
      const path = settings.path ?? url.pathname;
      const verdict = answerUpgrade({ ...options, peerAddress: "client", challenges, headers: request.headers, path: url.pathname });
      if (!verdict.ok) {
        onRefused("client", verdict.error);
        return new Response(verdict.error.message, { status: verdict.status });
      }
      const publish = settings.publish ? (topic: string, frame: Uint8Array) => srv.publish(topic, frame) : null;
      return srv.upgrade(request, { data: newServerSocketData(verdict, "client", path, publish) }) ? undefined : new Response("no", { status: 400 });
    },
    websocket: secureServerHandlers(accept, onRefused),
  });
}
