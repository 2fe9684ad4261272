/**
 * GET /identity for a test's bare Bun.serve peer: connectSecure asks it for the
 * upgrade-ticket challenge before dialing (upgrade-ticket.ts). Test servers
 * that do not check tickets take any; this one is fixed.
 */
import { fingerprint } from "../../src/core/keys.ts";

export function identityResponse(networkKey: Uint8Array): Response {
  return Response.json({ networkKeyFingerprint: fingerprint(networkKey), ticket: { id: "test-peer", nonce: "0".repeat(32) } });
}

/** The identity answer when `request` asks for it, else null. */
export function answerIdentity(request: Request, networkKey: Uint8Array): Response | null {
  return new URL(request.url).pathname === "/identity" ? identityResponse(networkKey) : null;
}
