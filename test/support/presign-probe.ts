/**
 * Compiled on its own by test/integration/worker-threads-compiled.test.ts: whether alive tokens
 * are signed ahead inside a compiled executable, where the worker's source (tweetnacl's text and a
 * Blob URL) must come from the bundle. Prints "signed ahead" with a token that verifies, else why not.
 */
import nacl from "tweetnacl";
import { aliveMessage } from "../../src/core/signed-claims.ts";
import { HeartbeatKeys } from "../../src/net/heartbeat-keys.ts";

const keys = new HeartbeatKeys(nacl.sign.keyPair(), { now: () => performance.now() });
const claim = { role: "main", id: keys.id, boot: "0011223344556677", epoch: 1, periodMs: 50 } as const;
const deadline = performance.now() + 10_000;
for (;;) {
  const now = performance.now();
  const token = keys.signedAhead(claim, now);
  if (token !== null) {
    const verifies = keys.verify(keys.id, aliveMessage("main", keys.id, claim.boot, token.t), token.s);
    console.log(verifies && token.t <= now ? "signed ahead" : `a token that ${verifies ? "is ahead of the clock" : "does not verify"}`);
    break;
  }
  if (now > deadline) {
    console.log("no token signed ahead within 10 s");
    break;
  }
  await Bun.sleep(10);
}
