/**
 * The main's Add Backup and Remove Backup (machine/partnership.ts), with the
 * pairing exchange held open by the test: the operator's last word counts.
 * Found by the simulator (readd-backup, seed 1233): an Add whose exchange was
 * still running when the backup was removed paired the two anyway.
 */
import { describe, expect, test } from "bun:test";
import { formatHostPort, type HostPort } from "../../../src/core/config.ts";
import { createLogger } from "../../../src/log.ts";
import { BackupChangeRefused, Partnership } from "../../../src/machine/partnership.ts";
import type { PairedPeer } from "../../../src/services/pairing-service.ts";
import type { PairingDetails } from "../../../src/store/pairing-file.ts";

const BACKUP: PairedPeer = { peerId: "00000000000000bb", peerName: "studio-backup", peerLicense: "server-with-failover", peerKey: new Uint8Array(32).fill(2) };

function mainPartnership() {
  const said: string[] = [];
  let answer: (peer: PairedPeer) => void = () => {};
  let wanted: HostPort | null = null;
  let recorded: PairingDetails | null = null;
  const partner = new Partnership({
    role: "main",
    pairingFile: {
      details: () => recorded,
      expect: (peer) => void said.push(`expect ${peer.peerId}`),
      rememberKey: () => {},
    },
    heartbeatKeys: { pin: () => said.push("pin") },
    exchange: {
      pair: (at) => (said.push(`pair ${formatHostPort(at)}`), new Promise<PairedPeer>((resolve) => (answer = resolve))),
      unpair: async (at) => void said.push(`unpair ${formatHostPort(at)}`),
    },
    feed: (event) => {
      said.push(`core ${event.type}`);
      if (event.type === "unpaired") recorded = null;
    },
    changed: () => {},
    wantedBackup: () => wanted,
    setWantedBackup: (at) => void (wanted = at),
    log: createLogger(() => "json", () => {}),
    timers: { after: () => () => {}, every: () => () => {} },
    resolve: async (at) => at,
  });
  return { partner, said, answer: (peer: PairedPeer) => answer(peer), wanted: () => wanted };
}

describe("Add Backup and Remove Backup on the main", () => {
  for (const address of ["10.0.0.2:7401", "[fd00::b]:7401"]) {
    test(`a backup removed while its Add still runs is told so and not adopted (${address})`, async () => {
      const m = mainPartnership();
      const adding = m.partner.addBackup(address).then(
        () => null,
        (error: Error) => error,
      );
      await Promise.resolve();
      await m.partner.removeBackup();
      m.answer(BACKUP);
      const error = await adding;
      expect(error).toBeInstanceOf(BackupChangeRefused);
      expect(error?.message).toContain("was removed while it was being added");
      expect(m.said).toEqual([`pair ${address}`, `unpair ${address}`]);
      expect(m.wanted()).toBeNull();
    });
  }

  test("an Add that runs to its end adopts the backup and names it in the setup", async () => {
    const m = mainPartnership();
    const adding = m.partner.addBackup("10.0.0.2:7401");
    await Promise.resolve();
    m.answer(BACKUP);
    expect(await adding).toEqual({ peerName: "studio-backup" });
    expect(m.said).toEqual(["pair 10.0.0.2:7401", "pin", `expect ${BACKUP.peerId}`, "core paired"]);
    expect(m.wanted()).toEqual({ host: "10.0.0.2", port: 7401 });
  });
});
