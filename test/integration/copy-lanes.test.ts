/**
 * The copy lanes with the real executable: `/replicate-log` and `/replicate` serve only the
 * paired server. A holder of the network key that is not it (a client machine, or an app that
 * read its data dir) once became the main's show-file follower, and its "applied" made the main
 * answer pushes as copied to the backup when the backup had not got them; a whole-state question
 * on `/replicate` cost the main's event loop hundreds of milliseconds each
 * (docs/design.md §Lanes and replication).
 */
import { afterEach, describe, expect, test } from "bun:test";
import nacl from "tweetnacl";
import { parseNetworkKey } from "../../src/core/keys.ts";
import { encodeWireJson } from "../../src/core/wire-json.ts";
import { connectSecure } from "../../src/net/secure-socket.ts";
import { Cluster } from "../support/cluster.ts";

const SETTLE_MS = 15_000;

let cluster: Cluster | null = null;
afterEach(async () => {
  await cluster?.shutdown();
  cluster = null;
});

/** Dials `path` as a fresh machine holding the network key; resolves with what came back: frames, and the close code. */
async function askAsKeyHolder(address: string, path: string, networkKey: Uint8Array, frame: unknown): Promise<{ frames: number; code: number | null }> {
  let frames = 0;
  let closed: (code: number | null) => void = () => {};
  const done = new Promise<number | null>((resolve) => (closed = resolve));
  const connection = await connectSecure(address, path, { networkKey, machine: nacl.sign.keyPair() }, () => ({
    message: () => void frames++,
    close: (_reason, code) => closed(code ?? null),
  }));
  connection.send(encodeWireJson(frame));
  const code = await Promise.race([done, Bun.sleep(3_000).then(() => null)]);
  connection.close(1000, "done");
  return { frames, code };
}

for (const host of ["127.0.0.1", "::1"] as const) {
  describe(`the copy lanes (${host})`, () => {
    test("a key holder that is not the paired server is refused on /replicate-log and /replicate, and the backup still copies", async () => {
      const c = (cluster = await Cluster.start({ host, clients: ["a"] }));
      await c.waitAll("the main serving, the backup idle", (_n, _s, all) => all.main?.failover?.state === "active" && all.backup?.failover?.state === "idle", { timeoutMs: SETTLE_MS });
      const networkKey = parseNetworkKey(await Bun.file(c.keyFile).text(), c.keyFile);
      const hello = { type: "hello", position: { logId: "0".repeat(32), firstSeq: 1, lastSeq: 1_000_000, snapshot: null } };
      const log = await askAsKeyHolder(c.address("main"), "/replicate-log", networkKey, hello);
      expect(log).toEqual({ frames: 0, code: 4003 });
      const state = await askAsKeyHolder(c.address("main"), "/replicate", networkKey, { type: "since", version: { epoch: 0, seq: 0 } });
      expect(state).toEqual({ frames: 0, code: 4003 });
      expect(c.logs("main").some((l) => l.event === "copy lane refused")).toBe(true);

      // The real backup was never knocked off: a set reaches it, and the chip stays idle.
      await c.set("a", "show/after-refusal", 1);
      await c.waitStatus("backup", "idle and copying", (s) => s.failover?.state === "idle" && s.chip === "Backup is idle", SETTLE_MS);
    }, 60_000);
  });
}
