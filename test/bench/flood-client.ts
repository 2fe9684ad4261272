/**
 * The attacker of `bun run bench flood`, in its own process: opens WebSockets
 * to a peer port at RATE per second for SECONDS, each upgrade carrying the
 * network key's fingerprint (public: GET /identity, DNS-SD) and a guessed
 * proof (no key). Prints one JSON line of counts when done.
 *   bun test/bench/flood-client.ts ADDRESS FINGERPRINT RATE SECONDS
 */
import nacl from "tweetnacl";
import { DIALER_PROOF_BYTES, FINGERPRINT_HEADER, PROOF_HEADER } from "../../src/net/handshake.ts";

const [address, fingerprintHex, rateText, secondsText] = process.argv.slice(2);
const rate = Number(rateText);
const seconds = Number(secondsText);
/** Sockets open at once at most, so the attacker's own process stays bounded. */
const MAX_IN_FLIGHT = 400;
const TICK_MS = 10;

const counts = { attempted: 0, opened: 0, refusedBeforeOpen: 0, answered: 0, skippedInFlight: 0 };
let inFlight = 0;

function guessedProof(): Record<string, string> {
  return { [PROOF_HEADER]: Buffer.from(nacl.randomBytes(DIALER_PROOF_BYTES)).toString("base64url"), [FINGERPRINT_HEADER]: fingerprintHex! };
}

function attack(): void {
  counts.attempted++;
  if (inFlight >= MAX_IN_FLIGHT) {
    counts.skippedInFlight++;
    return;
  }
  inFlight++;
  let opened = false;
  const ws = new WebSocket(`ws://${address}/hub`, { headers: guessedProof() } as unknown as string[]);
  ws.binaryType = "arraybuffer";
  ws.onopen = () => {
    opened = true;
    counts.opened++;
  };
  ws.onmessage = () => {
    counts.answered++;
    ws.close();
  };
  ws.onclose = () => {
    if (!opened) counts.refusedBeforeOpen++;
    inFlight--;
  };
}

const start = performance.now();
let sent = 0;
await new Promise<void>((resolve) => {
  const timer = setInterval(() => {
    const elapsed = performance.now() - start;
    if (elapsed >= seconds * 1000) {
      clearInterval(timer);
      resolve();
      return;
    }
    const due = Math.floor((elapsed / 1000) * rate);
    for (; sent < due; sent++) attack();
  }, TICK_MS);
});
const drainUntil = performance.now() + 3000;
while (inFlight > 0 && performance.now() < drainUntil) await Bun.sleep(20);
console.log(JSON.stringify({ ...counts, seconds: (performance.now() - start) / 1000 }));
process.exit(0);
