/**
 * The status every page's bar shows and `GET /api/status` returns. The zod
 * schema is the wire contract: `understudy status` parses the answer with it.
 */
import { engineAlertSchema } from "./engine-chip.ts";
import { z } from "zod";
import { LICENSE_TYPES } from "./license.ts";
import { ROLE_LABELS, ROLES, type Role } from "./roles.ts";
import { storageStatusSchema } from "./storage-check.ts";
import { laneLagSchema } from "./lane-lag.ts";

/** The chip's words, one list: the core's chip (failover/status.ts) speaks them, the status carries them, the pages refine them (console-chip.ts). */
export const CHIP_TEXTS = [
  "Stand-alone",
  "No backup",
  "Backup is syncing",
  "Backup is idle",
  "Backup is active",
  "Main unreachable from backup",
  "Main isolated",
  "No server reachable",
] as const;
export type ChipText = (typeof CHIP_TEXTS)[number];

/** Why the last server this machine tried refused it (another network key: both fingerprints), until a connection succeeds. */
export const peerRefusalSchema = z.object({
  peer: z.string(),
  code: z.string(),
  message: z.string(),
  peerFingerprint: z.string().nullable(),
  localFingerprint: z.string().nullable(),
});
export type PeerRefusal = z.infer<typeof peerRefusalSchema>;

export const machineStatusSchema = z.object({
  id: z.string(),
  name: z.string(),
  role: z.enum(ROLES),
  roleLabel: z.string(),
  chip: z.enum(CHIP_TEXTS),
  version: z.string(),
  commit: z.string(),
  license: z.object({ type: z.enum(LICENSE_TYPES), holder: z.string(), expiresAt: z.string().nullable() }).nullable(),
  networkKeyFingerprint: z.string().nullable(),
  main: z.string().nullable(),
  backup: z.string().nullable(),
  peerListen: z.string().nullable(),
  /** Servers: the show file's head revision and how far the backup's copy is (syncing N %, in sync, behind by N). */
  showFile: z
    .object({
      head: z.number(),
      backup: z.object({ state: z.enum(["none", "disconnected", "syncing", "in-sync", "behind"]), behindBy: z.number(), progress: z.number().nullable() }),
    })
    .nullable(),
  /** Servers: the Asset Hub cache and free disk on the main and the backup (null where not known yet), and a warning when the backup runs short. */
  storage: storageStatusSchema.nullable().default(null),
  /** Paired servers: how far the backup's copy is behind, per replication lane (core/lane-lag.ts). */
  replication: laneLagSchema.nullable().default(null),
  /** Servers: this Data Hub's connections, and counters since start of the frames it took (by type) and the deliveries it sent. */
  hub: z
    .object({
      clients: z.number(),
      received: z.record(z.string(), z.number()),
      deliveries: z.number(),
      /** Retained state held, in total and by the machines holding the most (hub/retained-shares.ts); absent from older servers. */
      retained: z
        .object({
          keys: z.number(),
          bytes: z.number(),
          maxKeys: z.number(),
          maxBytes: z.number(),
          machines: z.array(z.object({ machine: z.string(), name: z.string(), keys: z.number(), bytes: z.number() })),
          refusedOnImport: z.number(),
        })
        .optional(),
    })
    .nullable()
    .default(null),
  /** Null while stand-alone. */
  failover: z
    .object({
      state: z.string(),
      epoch: z.number(),
      activeEpoch: z.number().nullable(),
      activeServer: z.enum(["main", "backup", "self"]).nullable(),
      hubConnected: z.boolean(),
      queued: z.number(),
      /** Messages the server acknowledged, kept by this node for a resend after a switch (hub/acked-writes.ts). */
      kept: z.number(),
      /** Kept messages let go early by the count or byte bound: a resend after a switch would miss them. */
      keptDroppedEarly: z.number(),
      /** 0..1 while the backup's copy catches up ("Backup is syncing N %"). */
      chipProgress: z.number().nullable(),
      /** Local apps connected to this machine's own node. */
      localApps: z.number(),
      peers: z.array(
        z.object({
          id: z.string(),
          name: z.string(),
          role: z.string(),
          state: z.string(),
          address: z.string(),
          delayMs: z.number().nullable(),
          lastHeardMsAgo: z.number(),
          localApps: z.number().nullable().optional(),
          /** Claims it sent that it could not back (core/signed-claims.ts); absent from an older build. */
          unbackedClaims: z.number().optional(),
          /** A server's paired server as its last heartbeat said (a main naming none has no backup); absent from an older build. */
          pairedWith: z.string().nullable().optional(),
          /** Its network-key fingerprint as its last heartbeat said (the Machines row shows it); absent from an older build. */
          keyFingerprint: z.string().nullable().optional(),
        }),
      ),
      /** Servers: the server this one is paired with (docs/design.md §Pairing). */
      pairing: z
        .object({
          peerId: z.string(),
          peerName: z.string(),
          address: z.string(),
          /** The license type the other server sent in the pairing exchange. */
          peerLicense: z.enum(LICENSE_TYPES).nullable().optional(),
          confirmed: z.boolean(),
          hubCopied: z.boolean(),
        })
        .nullable()
        .optional(),
      refusal: peerRefusalSchema.nullable().optional(),
      /** The failover timeout: a peer heard longer ago than this is not believed now (core/heard.ts); absent from an older build. */
      timeoutMs: z.number().optional(),
      /** Show-file pushes and pulls wait for the main now (core/routing.ts showFileReadOnly): what every page offers follows this. */
      showFileReadOnly: z.boolean().default(false),
    })
    .nullable(),
  /** The serving server: render engines on their backup or failed with no backup free (core/engine-chip.ts); empty elsewhere. */
  engines: z.array(engineAlertSchema).default([]),
});
export type MachineStatus = z.infer<typeof machineStatusSchema>;

/** The chip before any failover state is known: a machine with no backup paired. */
export function baseChip(role: Role): ChipText {
  return role === "standalone" ? "Stand-alone" : "No backup";
}

export function roleLabel(role: Role): string {
  return ROLE_LABELS[role];
}
