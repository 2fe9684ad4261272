/** @jsxImportSource hono/jsx */
/** Why a server refused this machine, in words an engineer can act on (both fingerprints for a key mismatch). */
import type { PeerRefusal } from "../../core/status.ts";

export function refusalText(r: PeerRefusal): string {
  if (r.peerFingerprint !== null && r.localFingerprint !== null) {
    return `${r.peer} refused this machine: its network key differs (fingerprint ${r.peerFingerprint} there, ${r.localFingerprint} here). Install the same network key on every machine.`;
  }
  return `${r.peer} refused this machine: ${r.message}`;
}

export function RefusalNote(props: { refusal: PeerRefusal | null | undefined }) {
  const r = props.refusal;
  return r ? (
    <p class="field-error" role="alert" data-testid="refusal">
      {refusalText(r)}
    </p>
  ) : null;
}
