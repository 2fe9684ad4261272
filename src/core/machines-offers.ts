/**
 * What the Machines panel offers, and to whom: the switch-back card, the
 * delete icons on the Backup server row, Add Backup server and the permission
 * levels. The panel only draws what this says. A `server` is a main here
 * (failoverRole): a server that was given a backup on this panel is one.
 */
import { formatHostPort } from "./config.ts";
import type { FoundMachine, MachineRow } from "./machine-rows.ts";
import { mayChangeBackup, maySwitchBack, type Permission } from "./permissions.ts";
import { failoverRole } from "./routing.ts";
import type { MachineStatus } from "./status.ts";

/** One action a row offers: switch back to the main, or remove the backup (each labelled, each may be shown disabled below level 3). */
export type RowOffer = { readonly kind: "switch-back" | "remove-backup" | "add-backup"; readonly allowed: boolean };

export type MachinesOffers = {
  /** This main is back in standby and waits for someone to switch back (manual failback). */
  readonly switchBackCard: boolean;
  /** Add Backup server: the form, a note that a backup is paired, or nothing (not a main, not a level-3 client). */
  readonly addBackup: "form" | "paired" | "none";
  /** Machines found on the network that Add Backup server proposes: backups with this network key, one entry per machine. */
  readonly backupCandidates: readonly { readonly name: string; readonly address: string }[];
  /** A level-3 client asks the main to pair with the backup it names. */
  readonly addBackupFromClient: boolean;
  /** The permission-levels card: on the main only. */
  readonly permissions: boolean;
  /** By row id: the actions, in the order drawn (two different actions never share one icon). */
  readonly rows: Readonly<Record<string, readonly RowOffer[]>>;
  /** A backup's own page: whose backup it is, with "Forget this main" for its operator (docs/design.md §Pairing); null elsewhere. */
  readonly pairedMain: { readonly name: string; readonly address: string } | null;
};

const isMain = (s: MachineStatus) => failoverRole(s.role) === "main";

/** On a client: the main is back and waits in standby, so the Backup row also offers Switch back. */
function clientMaySwitchBackHere(s: MachineStatus, rows: readonly MachineRow[], row: MachineRow): boolean {
  return s.role === "client" && row.kind === "backup" && rows.some((r) => r.kind === "main" && r.wireState === "standby");
}

/** The Backup server row's delete icon removes it: on the main that holds the pairing, or on a client (the main does it, for level 3). */
function removable(s: MachineStatus, row: MachineRow): boolean {
  if (row.kind !== "backup") return false;
  // A backup that answers unpaired has been removed already: nothing to remove.
  if (s.role === "client") return row.wireState !== "unpaired";
  return isMain(s) && s.failover?.pairing?.peerId === row.id;
}

function rowOffers(s: MachineStatus, rows: readonly MachineRow[], row: MachineRow, permission: Permission, addBackup: MachinesOffers["addBackup"]): RowOffer[] {
  const offers: RowOffer[] = [];
  // Add Backup server sits on the right of the Main server row (the form it opens is not a live part, so typing is never swapped away).
  if (row.kind === "main" && addBackup === "form") offers.push({ kind: "add-backup", allowed: true });
  if (clientMaySwitchBackHere(s, rows, row)) offers.push({ kind: "switch-back", allowed: maySwitchBack(permission) });
  if (removable(s, row)) offers.push({ kind: "remove-backup", allowed: mayChangeBackup(permission) });
  return offers;
}

/** A client holds no pairing: the main it hears names its backup, or a backup answers paired. */
function clientSeesBackup(s: MachineStatus, rows: readonly MachineRow[]): boolean {
  const mainPairs = (s.failover?.peers ?? []).some((p) => p.role === "main" && typeof p.pairedWith === "string");
  return mainPairs || rows.some((r) => r.kind === "backup" && r.heard && r.wireState !== null && r.wireState !== "unpaired");
}

/** Only a backup's own pages (permission null) offer to forget its main. */
function pairedMain(s: MachineStatus, permission: Permission): MachinesOffers["pairedMain"] {
  const pairing = s.failover?.pairing;
  if (s.role !== "backup" || permission !== null || !pairing) return null;
  return { name: pairing.peerName || pairing.peerId, address: pairing.address };
}

/** Link-local IPv6 (fe80::/10): reachable only with a zone naming this machine's own interface, which no address field takes. */
const linkLocal = (host: string) => /^fe[89ab][0-9a-f]:/i.test(host);

/**
 * The one address to offer for a found machine: IPv4 first, then routable IPv6
 * in brackets with the port (formatHostPort); never link-local (a dial without
 * its zone fails), so a machine reachable only there is listed but not offered.
 */
export function offeredAddress(m: Pick<FoundMachine, "addresses" | "port">): string | null {
  const best = [...m.addresses].filter((host) => !linkLocal(host)).sort((a, b) => Number(a.includes(":")) - Number(b.includes(":")))[0];
  return best === undefined ? null : formatHostPort({ host: best, port: m.port });
}

/** A backup found on the network, as "Found on the network" lists it. */
export type FoundBackup = {
  readonly id: string;
  readonly name: string;
  readonly version: string;
  readonly fingerprint: string;
  readonly keyMismatch: boolean;
  /** Every address it answers on, IPv6 in brackets, link-local last. */
  readonly addressText: string;
  /** What Add Backup server would dial; null when it cannot be added from here (see `note`). */
  readonly offered: string | null;
  readonly note: string | null;
};

/**
 * The machines set up as backups, once each: by machine id, and by address (a
 * machine set up again under a new id leaves its old record for the records'
 * TTL; the one vouched for last wins). Addresses are where its peer port
 * listens (net/discovery: the TXT listen host when it names one).
 */
export function foundBackups(found: readonly FoundMachine[]): FoundBackup[] {
  const newestFirst = found.filter((m) => m.role === "backup").sort((a, b) => (b.lastSeen ?? 0) - (a.lastSeen ?? 0));
  const ids = new Set<string>();
  const addresses = new Set<string>();
  const out: FoundBackup[] = [];
  for (const m of newestFirst) {
    const offered = offeredAddress(m);
    if (ids.has(m.id) || (offered !== null && addresses.has(offered))) continue;
    ids.add(m.id);
    if (offered !== null) addresses.add(offered);
    const ordered = [...m.addresses].sort((a, b) => Number(linkLocal(a)) - Number(linkLocal(b)));
    out.push({
      id: m.id,
      name: m.name,
      version: m.version ?? "–",
      fingerprint: m.fingerprint,
      keyMismatch: m.keyMismatch,
      addressText: ordered.map((host) => formatHostPort({ host, port: m.port })).join(", "),
      offered: m.keyMismatch ? null : offered,
      note: m.keyMismatch
        ? `It holds another network key (${m.fingerprint}): paste this network's key on its setup page first.`
        : offered === null
          ? "It answers only on a link-local address: give its peer port a routable address (--peer-listen) to add it."
          : null,
    });
  }
  return out.sort((a, b) => a.name.localeCompare(b.name) || (a.id < b.id ? -1 : 1));
}

/** Machines set up as backups with this network key, once each, that Add Backup server can dial. */
function backupCandidates(found: readonly FoundMachine[]): MachinesOffers["backupCandidates"] {
  return foundBackups(found).flatMap((m) => (m.offered === null ? [] : [{ name: m.name, address: m.offered }]));
}

export function machinesOffers(s: MachineStatus, rows: readonly MachineRow[], permission: Permission, found: readonly FoundMachine[] = []): MachinesOffers {
  const main = isMain(s);
  const levelThreeClient = s.role === "client" && permission === 3;
  const addBackup = !main && !levelThreeClient ? "none" : s.failover?.pairing || (levelThreeClient && clientSeesBackup(s, rows)) ? "paired" : "form";
  return {
    switchBackCard: main && s.failover?.state === "standby",
    addBackup,
    backupCandidates: backupCandidates(found),
    addBackupFromClient: levelThreeClient,
    permissions: main,
    rows: Object.fromEntries(rows.map((r) => [r.id, rowOffers(s, rows, r, permission, addBackup)])),
    pairedMain: pairedMain(s, permission),
  };
}

/** Switching back has ended, as this machine sees it: a main serves again, or a client follows the main again. */
export function backOnMain(s: MachineStatus): boolean {
  if (isMain(s)) return s.failover?.state === "active";
  return s.role === "client" && s.failover?.activeServer === "main" && s.failover.hubConnected;
}
