/**
 * The rows of the Machines panel: this machine, every machine it hears
 * (heartbeats: state and round trip) and every machine DNS-SD found (license
 * type and key fingerprint), merged by machine id, servers first. With
 * discovery off a row still says what this machine knows: a machine heard
 * shows the network-key fingerprint its heartbeats report (a machine-sealed
 * heartbeat still arrives from a machine whose key changed, so hearing it
 * proves nothing about its key), the pairing exchange carried the other
 * server's license, and a server that refused the handshake for another key
 * is marked with its fingerprint. A client lists the other clients as its server hears them
 * (it exchanges no heartbeats with them).
 */
import { heardWithin } from "./heard.ts";
import { formatHostPort } from "./config.ts";
import { LICENSE_TYPE_LABELS, type LicenseType } from "./license.ts";
import { ROLE_LABELS, type Role } from "./roles.ts";
import type { MachineStatus } from "./status.ts";
import { DEFAULT_PERMISSION_LEVEL, seesOthers, type Permission, type PermissionLevel } from "./permissions.ts";

/** A machine DNS-SD found, as far as the rows read it (net/discovery's DiscoveredMachine is one). */
export type FoundMachine = {
  readonly id: string;
  readonly name: string;
  readonly role: string;
  readonly license: string | null;
  readonly fingerprint: string;
  readonly addresses: readonly string[];
  readonly port: number;
  readonly keyMismatch: boolean;
  readonly version?: string;
  /** When discovery last vouched for it (the newest record of one machine wins). */
  readonly lastSeen?: number;
};

/** Another client as this client's server hears it (the `/console` roster). */
export type RosterClient = {
  readonly id: string;
  readonly name: string;
  readonly address: string;
  readonly state: string;
  readonly localApps: number | null;
  readonly level: PermissionLevel;
};

/** Who looks: this machine's own permission, (on the main) every client's level, and (on a client) the other clients its server hears. */
export type Viewer = { permission: Permission; levels: Record<string, PermissionLevel>; others?: readonly RosterClient[] };
export const SERVER_VIEWER: Viewer = { permission: null, levels: {} };

export type MachineRow = {
  id: string;
  self: boolean;
  name: string;
  /** "main" | "backup" | "client" | "standalone" as the failover sees it ("server" is a main). */
  kind: "main" | "backup" | "client" | "standalone";
  roleLabel: string;
  address: string;
  license: string;
  fingerprint: string | null;
  keyDiffers: boolean;
  /** In words for the table. */
  state: string;
  /** The failover state as the machine itself reports it ("active", "standby", "follow-main", …); null when not heard. */
  wireState: string | null;
  delayMs: number | null;
  heard: boolean;
  /** A client's permission level, where this machine knows it (the main; a client its own). */
  level: PermissionLevel | null;
  /** Local apps connected to that machine's node, as it last said; null when not heard or not said. */
  localApps: number | null;
  /** Whose Data Hub that machine's apps reach, as its own state says (the Routing panel). */
  hub: HubOfMachine;
  /** Claims it sent that no server's signature backs (core/signed-claims.ts): the row is marked. */
  unbackedClaims: number;
  /** Drawn red on every panel that lists it: not heard (dead, frozen, cut off) or isolated (it cannot serve or reach a server). */
  alarm: "not-heard" | "isolated" | null;
};

/** The one rule for a red row: a machine not heard, or one whose own state says it is isolated. */
export function rowAlarm(row: Pick<MachineRow, "heard" | "wireState">): MachineRow["alarm"] {
  if (!row.heard) return "not-heard";
  return row.wireState === "isolated" ? "isolated" : null;
}

/**
 * Whose Data Hub a machine's apps reach: its own (it serves), a server's, or none while its apps'
 * messages wait (no server, or a main rejoining: routing.ts `uplinkTarget`), as far as this machine knows.
 */
export type HubOfMachine = "own" | "main" | "backup" | "waits" | "isolated" | "none" | "standalone" | "not-heard" | "unknown";

/** From the state a machine's heartbeat says; the same rule `uplinkTarget` applies on that machine. */
const HUB_OF_STATE: Record<string, HubOfMachine> = {
  active: "own",
  "follow-main": "main",
  "follow-backup": "backup",
  "follow-none": "waits",
  idle: "main",
  syncing: "main",
  // A rejoining main is about to serve itself: its apps wait for it rather than write to the backup.
  rejoining: "waits",
  standby: "backup",
  isolated: "isolated",
  unpaired: "none",
};

function hubOf(row: MachineRow, s: MachineStatus): HubOfMachine {
  if (!row.self) return row.wireState === null ? "not-heard" : (HUB_OF_STATE[row.wireState] ?? "unknown");
  if (s.failover === null) return "standalone";
  const active = s.failover.activeServer;
  return active === "self" ? "own" : active ?? "waits";
}

const KIND_ORDER = { main: 0, backup: 1, client: 2, standalone: 3 } as const;

const STATE_WORDS: Record<string, string> = {
  active: "serving",
  rejoining: "back, catching up",
  standby: "back, waits to switch back",
  isolated: "isolated",
  unpaired: "not paired",
  syncing: "copying from the main",
  idle: "in sync, ready",
  "follow-main": "on the main",
  "follow-backup": "on the backup",
  "follow-none": "on no server",
};

function kindOf(role: string): MachineRow["kind"] {
  if (role === "main" || role === "server") return "main";
  if (role === "backup" || role === "client") return role;
  return "standalone";
}

function labelOf(kind: MachineRow["kind"]): string {
  return ROLE_LABELS[kind as Role];
}

/** The documentation's name for a role as heartbeats and adverts carry it ("main" → "Main server"). */
export function roleLabelOf(role: string): string {
  return labelOf(kindOf(role));
}

function licenseLabel(type: string | null | undefined): string {
  return type && type in LICENSE_TYPE_LABELS ? LICENSE_TYPE_LABELS[type as LicenseType] : "–";
}

/**
 * A peer counts as heard for `heardWithinMs` after its last heartbeat. A
 * level-1 client sees no other client.
 */
export function machineRows(s: MachineStatus, discovered: readonly FoundMachine[], heardWithinMs: number, viewer: Viewer = SERVER_VIEWER): MachineRow[] {
  const kind = kindOf(s.role);
  const rows = new Map<string, MachineRow>();
  rows.set(s.id, {
    id: s.id,
    self: true,
    name: s.name,
    kind,
    roleLabel: s.roleLabel === "Server" ? labelOf("main") : s.roleLabel,
    address: s.peerListen ?? "–",
    license: licenseLabel(s.license?.type),
    fingerprint: s.networkKeyFingerprint,
    keyDiffers: false,
    state: s.failover ? (STATE_WORDS[s.failover.state] ?? s.failover.state) : "stand-alone",
    wireState: s.failover?.state ?? null,
    delayMs: null,
    heard: true,
    localApps: s.failover?.localApps ?? null,
    level: kind === "client" ? viewer.permission : null,
    hub: "unknown",
    unbackedClaims: 0,
    alarm: null,
  });
  const found = new Map(discovered.map((d) => [d.id, d]));
  const pairing = s.failover?.pairing;
  /** The license the pairing exchange carried, for the paired server. */
  const pairedLicense = (id: string) => (pairing?.peerId === id ? pairing.peerLicense : null);
  for (const p of s.failover?.peers ?? []) {
    const d = found.get(p.id);
    const heard = heardWithin(p.lastHeardMsAgo, heardWithinMs);
    const k = kindOf(p.role);
    const reported = p.keyFingerprint ?? d?.fingerprint ?? null;
    rows.set(
      p.id,
      otherRow({
        id: p.id,
        name: p.name,
        kind: k,
        address: p.address,
        license: licenseLabel(d?.license ?? pairedLicense(p.id)),
        // The key it reported itself (its heartbeat, else its DNS-SD record), never this machine's own.
        fingerprint: reported,
        keyDiffers: reported !== null && s.networkKeyFingerprint !== null && reported !== s.networkKeyFingerprint,
        state: heard ? (STATE_WORDS[p.state] ?? p.state) : `not heard for ${Math.round(p.lastHeardMsAgo / 1000)} s`,
        wireState: heard ? p.state : null,
        delayMs: heard ? p.delayMs : null,
        heard,
        localApps: heard ? (p.localApps ?? null) : null,
        unbackedClaims: p.unbackedClaims ?? 0,
        level: k === "client" && s.role !== "client" && s.role !== "backup" ? (viewer.levels[p.id] ?? DEFAULT_PERMISSION_LEVEL) : null,
      }),
    );
  }
  if (pairing && !rows.has(pairing.peerId)) {
    const d = found.get(pairing.peerId);
    rows.set(
      pairing.peerId,
      otherRow({
        id: pairing.peerId,
        name: pairing.peerName || pairing.address,
        kind: kind === "main" ? "backup" : "main",
        address: pairing.address,
        license: licenseLabel(d?.license ?? pairing.peerLicense),
        fingerprint: d?.fingerprint ?? null,
        keyDiffers: d?.keyMismatch ?? false,
        state: "paired, not heard",
      }),
    );
  }
  for (const d of discovered) {
    if (rows.has(d.id)) continue;
    rows.set(
      d.id,
      otherRow({
        id: d.id,
        name: d.name,
        kind: kindOf(d.role),
        address: d.addresses.map((host) => formatHostPort({ host, port: d.port })).join(", "),
        license: licenseLabel(d.license),
        fingerprint: d.fingerprint,
        keyDiffers: d.keyMismatch,
        state: d.keyMismatch ? "another network key" : "found, not heard",
      }),
    );
  }
  for (const o of viewer.others ?? []) {
    if (rows.has(o.id)) continue;
    // No round trip: that is this machine's own measure, and it exchanges no heartbeats with other clients.
    rows.set(
      o.id,
      otherRow({
        id: o.id,
        name: o.name,
        kind: "client",
        address: o.address,
        // The server's roster does not carry their keys: unknown here, not assumed to be ours.
        fingerprint: null,
        state: `${STATE_WORDS[o.state] ?? o.state} (as the server sees it)`,
        wireState: o.state,
        heard: true,
        localApps: o.localApps,
        level: o.level,
      }),
    );
  }
  markRefusal(rows, s);
  // A machine only found by DNS-SD is not one this machine expects to hear: not heard is no alarm there.
  const expected = new Set([s.id, ...(s.failover?.peers ?? []).map((p) => p.id), ...(pairing ? [pairing.peerId] : []), ...(viewer.others ?? []).map((o) => o.id)]);
  for (const row of rows.values()) {
    row.hub = hubOf(row, s);
    row.alarm = expected.has(row.id) ? rowAlarm(row) : null;
  }
  return [...rows.values()]
    .filter((r) => r.self || r.kind !== "client" || seesOthers(viewer.permission)).sort((a, b) => KIND_ORDER[a.kind] - KIND_ORDER[b.kind] || Number(b.self) - Number(a.self) || a.name.localeCompare(b.name));
}

/**
 * A server that refused this machine's handshake for another network key
 * (its fingerprint known from that handshake): its row, found by address, is
 * marked; with no row yet (not heard, not discovered) it gets one.
 */
function markRefusal(rows: Map<string, MachineRow>, s: MachineStatus): void {
  const refusal = s.failover?.refusal;
  if (!refusal?.peerFingerprint || refusal.peerFingerprint === refusal.localFingerprint) return;
  const marked = { fingerprint: refusal.peerFingerprint, keyDiffers: true, state: "another network key", wireState: null, delayMs: null, heard: false, localApps: null };
  const row = [...rows.values()].find((r) => !r.self && r.address.split(", ").includes(refusal.peer));
  if (row) {
    Object.assign(row, marked);
    return;
  }
  const kind = refusal.peer === s.backup ? "backup" : "main";
  rows.set(refusal.peer, otherRow({ id: refusal.peer, name: refusal.peer, kind, address: refusal.peer, ...marked }));
}

/** Another machine's row: what this machine does not know of it stays unknown (no license, not heard, no round trip, no level). */
function otherRow(r: Pick<MachineRow, "id" | "name" | "kind" | "address" | "fingerprint" | "state"> & Partial<MachineRow>): MachineRow {
  return { self: false, roleLabel: labelOf(r.kind), license: "–", keyDiffers: false, wireState: null, delayMs: null, heard: false, localApps: null, level: null, hub: "unknown", unbackedClaims: 0, alarm: null, ...r };
}
