import { expect, test } from "bun:test";
import { consoleChip } from "../../../src/core/console-chip.ts";
import { peer, statusFixture } from "../../support/status-fixture.ts";

const cases: { name: string; status: ReturnType<typeof statusFixture>; text: string; tone: string }[] = [
  { name: "stand-alone", status: statusFixture({ role: "standalone", chip: "Stand-alone" }, null), text: "Stand-alone", tone: "neutral" },
  { name: "healthy main", status: statusFixture(), text: "Backup is idle", tone: "ok" },
  { name: "syncing shows its progress", status: statusFixture({ chip: "Backup is syncing" }, { chipProgress: 0.426 }), text: "Backup is syncing 42 %", tone: "warn" },
  {
    name: "idle but the show file copy is behind",
    status: statusFixture({ showFile: { head: 40, backup: { state: "behind", behindBy: 3, progress: null } } }),
    text: "Backup behind",
    tone: "warn",
  },
  { name: "the backup serves", status: statusFixture({ chip: "Backup is active" }, { state: "rejoining" }), text: "Backup is active", tone: "alert" },
  { name: "a main back in standby", status: statusFixture({ chip: "Backup is active" }, { state: "standby" }), text: "Main is back — waiting to switch back", tone: "warn" },
  { name: "a server given a backup, back in standby", status: statusFixture({ role: "server", chip: "Backup is active" }, { state: "standby" }), text: "Main is back — waiting to switch back", tone: "warn" },
  { name: "a server given a backup that it does not hear", status: statusFixture({ role: "server", chip: "No backup" }), text: "Backup unreachable", tone: "alert" },
  { name: "paired main that hears no backup", status: statusFixture({ chip: "No backup" }), text: "Backup unreachable", tone: "alert" },
  { name: "main with no backup paired", status: statusFixture({ chip: "No backup", backup: null }, { pairing: null }), text: "No backup", tone: "neutral" },
  { name: "client that names a backup it does not hear", status: statusFixture({ role: "client", roleLabel: "Client", chip: "No backup", showFile: null }, { pairing: null }), text: "Backup unreachable", tone: "alert" },
  {
    name: "client whose named backup was removed: the main it hears pairs with no one",
    status: statusFixture({ role: "client", chip: "No backup", showFile: null }, { pairing: null, peers: [peer({ id: "m", name: "studio-main", role: "main", state: "active", pairedWith: null })] }),
    text: "No backup",
    tone: "neutral",
  },
  {
    name: "client whose named backup was removed: the backup answers unpaired",
    status: statusFixture({ role: "client", chip: "No backup", showFile: null }, { pairing: null, peers: [peer({ state: "unpaired" })] }),
    text: "No backup",
    tone: "neutral",
  },
  {
    name: "client whose main still pairs with the backup it does not hear",
    status: statusFixture({ role: "client", chip: "No backup", showFile: null }, { pairing: null, peers: [peer({ id: "m", name: "studio-main", role: "main", state: "active", pairedWith: "b0b0b0b0b0b0b0b0" })] }),
    text: "Backup unreachable",
    tone: "alert",
  },
  {
    name: "the backup serving while its main waits in standby",
    status: statusFixture({ role: "backup", chip: "Backup is active" }, { state: "active", peers: [peer({ id: "m", name: "studio-main", role: "main", state: "standby" })] }),
    text: "Main is back — waiting to switch back",
    tone: "warn",
  },
  {
    name: "a client on the backup while the main waits in standby",
    status: statusFixture({ role: "client", chip: "Backup is active", showFile: null }, { state: "follow-backup", pairing: null, peers: [peer({ id: "m", name: "studio-main", role: "main", state: "standby" })] }),
    text: "Main is back — waiting to switch back",
    tone: "warn",
  },
  {
    name: "a main last heard waiting, but not for a timeout: the backup serves because the main is down",
    status: statusFixture({ role: "backup", chip: "Backup is active" }, { state: "active", timeoutMs: 1000, peers: [peer({ id: "m", role: "main", state: "standby", lastHeardMsAgo: 5000 })] }),
    text: "Backup is active",
    tone: "alert",
  },
  { name: "client with no server", status: statusFixture({ role: "client", chip: "No server reachable", showFile: null }, { pairing: null }), text: "No server reachable", tone: "alert" },
  { name: "isolated main", status: statusFixture({ chip: "Main isolated" }, { state: "isolated" }), text: "Main isolated", tone: "alert" },
  { name: "a role saved before its network key", status: statusFixture({ role: "client", chip: "No backup", networkKeyFingerprint: null }, null), text: "Waiting for the network key", tone: "warn" },
  { name: "a backup that names no main and is not paired yet", status: statusFixture({ role: "backup", chip: "No backup", main: null }, { pairing: null }), text: "Waiting to be added by a main server", tone: "neutral" },
  { name: "a backup that names no main, once a main added it", status: statusFixture({ role: "backup", chip: "Backup is idle", main: null }), text: "Backup is idle", tone: "ok" },
  { name: "backup held back by witnesses", status: statusFixture({ role: "backup", chip: "Main unreachable from backup" }), text: "Main unreachable from backup", tone: "warn" },
];

for (const c of cases) {
  test(`chip: ${c.name}`, () => {
    const chip = consoleChip(c.status);
    expect(chip.text).toBe(c.text);
    expect(chip.tone).toBe(c.tone as never);
    expect(chip.hint.length).toBeGreaterThan(10);
  });
}
