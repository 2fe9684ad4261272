/** A MachineStatus for view and console tests: a healthy main by default, changed by overrides. */
import type { MachineStatus } from "../../src/core/status.ts";

type Failover = NonNullable<MachineStatus["failover"]>;
export type PeerFixture = Failover["peers"][number];

export function peer(over: Partial<PeerFixture> = {}): PeerFixture {
  return { id: "b0b0b0b0b0b0b0b0", name: "backup", role: "backup", state: "idle", address: "10.0.0.2:7401", delayMs: 0.4, lastHeardMsAgo: 50, ...over };
}

export function statusFixture(over: Partial<MachineStatus> = {}, failover: Partial<Failover> | null = {}): MachineStatus {
  return {
    id: "a1a1a1a1a1a1a1a1",
    name: "studio-main",
    role: "main",
    roleLabel: "Main server",
    chip: "Backup is idle",
    version: "0.1.0",
    commit: "test",
    license: { type: "server-with-failover", holder: "*", expiresAt: null },
    networkKeyFingerprint: "0011223344556677",
    main: null,
    backup: "10.0.0.2:7401",
    peerListen: "0.0.0.0:7401",
    showFile: { head: 12, backup: { state: "in-sync", behindBy: 0, progress: null } },
    storage: null,
    replication: { hubState: 0, log: 0 },
    hub: { clients: 3, received: { hello: 3, pub: 120, set: 4 }, deliveries: 360 },
    failover:
      failover === null
        ? null
        : {
            state: "active",
            epoch: 3,
            activeEpoch: 3,
            activeServer: "self",
            hubConnected: true,
            queued: 0,
            kept: 0,
            keptDroppedEarly: 0,
            showFileReadOnly: false,
            chipProgress: null,
            localApps: 2,
            peers: [peer()],
            pairing: { peerId: "b0b0b0b0b0b0b0b0", peerName: "backup", address: "10.0.0.2:7401", confirmed: true, hubCopied: true },
            refusal: null,
            ...failover,
          },
    engines: [],
    ...over,
  };
}
