/**
 * The chip the operator console shows, refined from the core's chip with what
 * the status also knows (the show-file copy, the pairing, a main in standby).
 * A `server` is a main here as everywhere (failoverRole): a server that was
 * given a backup on its Machines panel reads the same chips as `--role main`.
 * The rules are a table read top to bottom, first match wins: a new state
 * (e.g. "Network key differs" from a refusal) is one more row.
 */
import { engineChip } from "./engine-chip.ts";
import { heardWithin } from "./heard.ts";
import { failoverRole } from "./routing.ts";
import type { MachineStatus } from "./status.ts";

export type ChipTone = "ok" | "warn" | "alert" | "neutral";
export type ConsoleChip = { text: string; tone: ChipTone; hint: string };

type Rule = (s: MachineStatus) => ConsoleChip | null;
type Peer = NonNullable<MachineStatus["failover"]>["peers"][number];

/** As config's default --failover-timeout-ms, for a status from an older build that does not carry it. */
const DEFAULT_TIMEOUT_MS = 1000;
const MAIN_WAITS = "Main is back — waiting to switch back";

const percent = (p: number | null | undefined) => `${Math.floor((p ?? 0) * 100)} %`;

const RULES: readonly Rule[] = [
  (s) => (s.role === "standalone" ? { text: "Stand-alone", tone: "neutral", hint: "This machine works alone, without a network." } : null),
  // Set up in any order (docs/design.md §Roles and licenses): a saved role says what it still lacks.
  (s) =>
    s.networkKeyFingerprint === null
      ? { text: "Waiting for the network key", tone: "warn", hint: "Paste the main server's network key on this machine's setup page (or generate it here on the main server)." }
      : null,
  (s) =>
    s.role === "backup" && s.main === null && !s.failover?.pairing
      // Grey like "No backup": it is what a removed backup reads too, a state the operator chose, not a fault.
      ? { text: "Waiting to be added by a main server", tone: "neutral", hint: "On the main server's Machines panel, choose Add Backup server with this machine's address." }
      : null,
  (s) => {
    const r = s.failover?.refusal;
    if (!r || r.code !== "NETWORK_KEY_MISMATCH") return null;
    const prints = r.peerFingerprint && r.localFingerprint ? ` (fingerprint ${r.peerFingerprint} there, ${r.localFingerprint} here)` : "";
    return { text: "Network key differs", tone: "alert", hint: `Network key differs from the server's at ${r.peer}${prints}: install the same network key on every machine.` };
  },
  (s) =>
    s.chip === "Main isolated"
      ? { text: "Main isolated", tone: "alert", hint: "This main hears neither its backup nor any client: it holds Data Hub writes until it hears the network." }
      : null,
  (s) =>
    failoverRole(s.role) === "main" && s.failover?.state === "standby"
      ? { text: MAIN_WAITS, tone: "warn", hint: "The backup still serves. Switch back on the Machines panel when it suits the show." }
      : null,
  // The backup and the clients hear the main waiting in standby: it is not down (manual failback).
  (s) =>
    s.chip === "Backup is active" && heardPeers(s).some((p) => p.role === "main" && p.state === "standby")
      ? { text: MAIN_WAITS, tone: "warn", hint: "The main server is back and waits: the backup serves until someone switches back on the Machines panel." }
      : null,
  (s) => (s.chip === "Backup is active" ? { text: "Backup is active", tone: "alert", hint: "The main server is down: the backup serves the network." } : null),
  (s) =>
    s.chip === "No server reachable"
      ? { text: "No server reachable", tone: "alert", hint: "This client hears neither the main nor the backup. Its apps' messages wait." }
      : null,
  // Render engines on their backup outrank the backup server's own state (docs/design.md §Render-engine backups).
  (s) => engineChip(s.engines ?? [], (id) => (id === s.id ? s.name : (s.failover?.peers.find((p) => p.id === id)?.name ?? id))),
  (s) =>
    s.chip === "Main unreachable from backup"
      ? { text: "Main unreachable from backup", tone: "warn", hint: "The backup does not hear the main, but clients do: it does not take over." }
      : null,
  (s) =>
    s.chip === "Backup is syncing"
      ? { text: `Backup is syncing ${percent(s.failover?.chipProgress)}`, tone: "warn", hint: "The backup is copying what the main holds; it cannot take over yet." }
      : null,
  (s) =>
    s.chip === "Backup is idle" && s.showFile?.backup.state === "behind"
      ? { text: "Backup behind", tone: "warn", hint: `The backup's copy of the show file is ${s.showFile.backup.behindBy} changes behind.` }
      : null,
  (s) => (s.chip === "Backup is idle" ? { text: "Backup is idle", tone: "ok", hint: "The backup has everything and is ready to take over." } : null),
  // A backup this machine should hear but does not.
  (s) =>
    s.chip === "No backup" && ((failoverRole(s.role) === "main" && s.failover?.pairing) || (s.role === "client" && s.backup && !backupRemoved(s)))
      ? { text: "Backup unreachable", tone: "alert", hint: "The backup server is not heard: if the main fails now, nothing takes over." }
      : null,
];

/** The peers heard within the failover timeout: what they last said is what they say now. */
function heardPeers(s: MachineStatus): readonly Peer[] {
  const timeoutMs = s.failover?.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  return (s.failover?.peers ?? []).filter((p) => heardWithin(p.lastHeardMsAgo, timeoutMs));
}

/**
 * A client's named backup was removed when the main it hears pairs with no one,
 * or the backup itself answers unpaired: grey "No backup", not red (docs/design.md §Pairing).
 */
function backupRemoved(s: MachineStatus): boolean {
  const peers = heardPeers(s);
  const main = peers.find((p) => p.role === "main");
  const backup = peers.find((p) => p.role === "backup");
  return (main !== undefined && main.pairedWith === null) || backup?.state === "unpaired";
}

export function consoleChip(s: MachineStatus): ConsoleChip {
  for (const rule of RULES) {
    const chip = rule(s);
    if (chip) return chip;
  }
  return { text: "No backup", tone: "neutral", hint: "No backup server is paired: if the main fails, nothing takes over." };
}
