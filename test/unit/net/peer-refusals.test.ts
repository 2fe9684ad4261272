/** Finding 6: refused peers back off with jitter, logs de-duplicate, and the refused machine says why. */
import { afterEach, describe, expect, test } from "bun:test";
import nacl from "tweetnacl";
import { fingerprint } from "../../../src/core/keys.ts";
import type { Logger } from "../../../src/log.ts";
import { HandshakeFailed, NetworkKeyMismatch, PeerRefused } from "../../../src/net/errors.ts";
import { MAX_REFUSAL_BACKOFF_MS, PeerRefusals, refusalBackoffMs } from "../../../src/net/peer-refusals.ts";
import type { MachineNode } from "../../../src/machine/machine-node.ts";
import { setUpDataDir, startNode } from "../../support/machine-node.ts";
import { waitFor } from "../../support/wait-for.ts";

function recordingLog() {
  const lines: { event: string; fields: Record<string, unknown> }[] = [];
  const log: Logger = {
    info: () => {},
    warn: (event, fields = {}) => lines.push({ event, fields }),
    error: () => {},
  };
  return { log, lines };
}

describe("refusal back-off", () => {
  test("grows per refusal in a row, with jitter over the upper half, up to several seconds", () => {
    expect(refusalBackoffMs(0, () => 0.5)).toBe(0);
    expect([1, 2, 3, 4, 5].map((n) => refusalBackoffMs(n, () => 1))).toEqual([500, 1000, 2000, 4000, 8000]);
    expect([1, 2, 3].map((n) => refusalBackoffMs(n, () => 0))).toEqual([250, 500, 1000]);
    expect(refusalBackoffMs(40, () => 1)).toBe(MAX_REFUSAL_BACKOFF_MS);
  });

  test("a refusal waits and is remembered with both fingerprints; nothing answering does not wait; success clears", () => {
    let now = 0;
    const { log, lines } = recordingLog();
    const refusals = new PeerRefusals({ now: () => now }, log, () => 1);
    refusals.failed("10.0.0.1:7401", new HandshakeFailed("10.0.0.1:7401", "Could not connect"), "hub link failed");
    expect(refusals.waitMs("10.0.0.1:7401")).toBe(0);
    expect(refusals.current()).toBeNull();
    const mismatch = new NetworkKeyMismatch("10.0.0.1:7401", "aaaa", "bbbb");
    refusals.failed("10.0.0.1:7401", mismatch, "hub link failed");
    refusals.failed("10.0.0.1:7401", mismatch, "hub link failed");
    expect(refusals.waitMs("10.0.0.1:7401")).toBe(1000);
    expect(refusals.current()).toMatchObject({ peer: "10.0.0.1:7401", code: "NETWORK_KEY_MISMATCH", peerFingerprint: "aaaa", localFingerprint: "bbbb" });
    for (let i = 0; i < 600; i++) {
      now += 100;
      refusals.failed("10.0.0.1:7401", new PeerRefused("10.0.0.1:7401", "busy"), "hub link failed");
    }
    expect(lines.map((l) => [l.fields.code, l.fields.repeated ?? 0])).toEqual([
      ["HANDSHAKE_FAILED", 0],
      ["NETWORK_KEY_MISMATCH", 0],
      ["HANDSHAKE_FAILED", 599],
    ]);
    refusals.succeeded("10.0.0.1:7401", "hub link failed");
    expect(refusals.waitMs("10.0.0.1:7401")).toBe(0);
    expect(refusals.current()).toBeNull();
  });
});

describe("a backup on another network key", () => {
  const running: MachineNode[] = [];
  afterEach(async () => {
    for (const node of running.splice(0)) await node.stop();
  });


  test("shows why on its own status and pages; both logs stay quiet while it retries", async () => {
    const mainKey = nacl.randomBytes(32);
    const backupKey = nacl.randomBytes(32);
    const main = await startNode({ dataDir: setUpDataDir(mainKey), flags: { role: "main", heartbeatMs: "50", failoverTimeoutMs: "250" } });
    running.push(main.node);
    const backup = await startNode({
      dataDir: setUpDataDir(backupKey),
      flags: { role: "backup", main: main.node.status().peerListen!, heartbeatMs: "50", failoverTimeoutMs: "250" },
    });
    running.push(backup.node);
    const refusal = await waitFor("the refusal on the backup's status", () => backup.node.status().failover?.refusal);
    expect(refusal).toMatchObject({ code: "NETWORK_KEY_MISMATCH", peerFingerprint: fingerprint(mainKey), localFingerprint: fingerprint(backupKey) });
    const bar = await (await backup.node.app.request("http://localhost/partials/status-bar")).text();
    expect(bar).toContain("Network key differs from the server");
    const page = await (await backup.node.app.request("http://localhost/machines")).text();
    expect(page).toContain(`fingerprint ${fingerprint(mainKey)} there, ${fingerprint(backupKey)} here`);
    // Several refused tries later (it backs off from 0.5 s), each side has logged the refusal once.
    await waitFor("a few refused tries", () => main.lines.filter((l) => l.includes('"NETWORK_KEY_MISMATCH"')).length >= 1, 10_000);
    await Bun.sleep(1500);
    const count = (lines: string[], event: string) => lines.filter((l) => l.includes(`"event":"${event}"`) && l.includes("NETWORK_KEY_MISMATCH")).length;
    expect(count(main.lines, "peer refused")).toBe(1);
    // The backup is not paired (the main cannot pair across keys), so it only checks the main's key: once logged.
    expect(count(backup.lines, "peer refused")).toBe(1);
  });
});
