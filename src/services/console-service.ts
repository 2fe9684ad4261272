/**
 * The console's requests between machines on `/console`: a client asks the
 * main its permission level (and, from level 2, the other clients the main
 * hears, for its Machines panel), and a level-3 client asks the main to switch
 * back, add a backup server or remove it. The paired backup copies every
 * level from the main and answers clients' level questions from its copy, so
 * a client started while the main is down keeps its rights. The handshake
 * already proved the asker's machine id, so a server answers from its own
 * permissions file; nothing the client says about itself is believed. A
 * machine the server does not list (no level set, not heard as a client) gets
 * level 1 and no roster. The render engines' backup groups travel the same
 * way: the paired backup copies them, clients from level 2 read them, and a
 * level-3 client saves them on the main. A level-3 client's manual engine
 * switch goes to the main, or to the backup while it serves (it checks the
 * level from its copy); the server that serves carries it out.
 */
import { z } from "zod";
import { AppError, InvalidInput } from "../core/errors.ts";
import { levelOf, mayChangeBackup, maySwitchBack, PERMISSION_LEVELS, PermissionRefused, seesOthers, type PermissionLevel } from "../core/permissions.ts";
import type { HostPort } from "../core/config.ts";
import type { PeerCaller } from "../net/kept-calls.ts";
import { rpcServer } from "../net/rpc.ts";
import { permissionLevelsSchema } from "../store/permissions-file.ts";
import { learnedBackupSchema, type LearnedBackupWord } from "../store/learned-backup-file.ts";
import { engineBackupsSchema, type EngineBackups } from "../store/backup-groups-file.ts";
import { engineWatchViewSchema, type EngineWatchWireView } from "../core/engine-watch-view.ts";
import type { ConnectionEvents, SecureConnection } from "../net/secure-socket.ts";

/** A level question is small; it must not hold a page for long. */
export const CONSOLE_CALL_TIMEOUT_MS = 3000;
/** Adding or removing a backup waits for the main's own pairing exchange with it. */
const PAIRING_ANSWER_MS = 12_000;

const permissionLevel = z.union(PERMISSION_LEVELS.map((l) => z.literal(l)) as [z.ZodLiteral<1>, z.ZodLiteral<2>, z.ZodLiteral<3>]);
/** Clients listed at most in one answer; a studio has far fewer. */
export const MAX_ROSTER = 500;
/** Another client as the server that answers hears it: what a level-2 or 3 client's Machines panel shows of it. */
const rosterEntrySchema = z.object({
  id: z.string().regex(/^[0-9a-f]{16}$/),
  name: z.string().min(1).max(64),
  address: z.string().max(300),
  /** Its failover state as its last heartbeat said ("follow-main", …). */
  state: z.string().max(32),
  localApps: z.number().int().min(0).max(1_000_000).nullable(),
  level: permissionLevel,
});
export type RosterEntry = z.infer<typeof rosterEntrySchema>;
/**
 * `backup`: only the main's answer carries it (its paired backup, or null: none); the backup's answer leaves it out.
 * The client follows that backup when its setup names none (docs/design.md §Pairing).
 */
const levelSchema = z.object({ level: permissionLevel, machines: z.array(rosterEntrySchema).max(MAX_ROSTER).default([]), backup: learnedBackupSchema.nullable().optional() });
export type LevelAnswer = z.infer<typeof levelSchema>;
const switchedSchema = z.object({ message: z.string().max(400) });
const addBackupParams = z.object({ address: z.string().max(300) });
const addedSchema = z.object({ peerName: z.string().max(64) });
const removedSchema = z.object({ removed: z.literal(true) });
const allLevelsSchema = z.object({ levels: permissionLevelsSchema });
const savedGroupsSchema = z.object({ saved: z.literal(true) });
/** A manual engine switch: put the backup engine on air for `main`, or the main back. */
export const engineSwitchSchema = z.strictObject({
  group: z.string().regex(/^[a-z0-9][a-z0-9-]{0,63}$/),
  main: z.string().min(1).max(128),
  to: z.enum(["backup", "main"]),
});
export type EngineSwitch = z.infer<typeof engineSwitchSchema>;

export type ConsoleSide = {
  levels(): Record<string, PermissionLevel>;
  /** The clients this server hears now, each with its level. */
  roster(): RosterEntry[];
  /** Switches back if this main waits in standby; throws an AppError saying why not otherwise. */
  switchBack(): string;
  /** Add Backup server / remove it, as on the main's own Machines panel. */
  addBackup(address: string): Promise<{ peerName: string }>;
  removeBackup(): Promise<void>;
  /** The machine id of the paired backup (the only one that may copy every level), or null. */
  pairedBackup(): string | null;
  /** The paired backup's peer address and machine id, told to clients with their level; null: none. */
  pairedBackupAt(): LearnedBackupWord | null;
  /** The render engines' backup groups (the paired backup copies them; clients from level 2 read them). */
  groups(): EngineBackups;
  /** A level-3 client's save of every group; throws an AppError (a refusal of the groups' checks) otherwise. */
  saveGroups(backups: EngineBackups): void;
  /** A manual engine switch on this server's runner; throws an AppError saying why not (NOT_ACTIVE: it does not serve now). */
  switchEngine(change: EngineSwitch): string;
  /** What this server's engine runner shows; throws NOT_ACTIVE when it does not serve now. */
  engineHealth(): EngineWatchWireView;
};

/** The engine runner's view for a client's Health panel: from level 2, like the backup groups. */
function engineHealthRpc(level: () => PermissionLevel, engineHealth: () => EngineWatchWireView) {
  return () => {
    if (!seesOthers(level())) throw new PermissionRefused(level(), "see the render engines' health");
    return engineHealth();
  };
}

/** The engine switch's RPC handler, shared by the main and the backup: level 3 only, the params checked before anything runs. */
function switchEngineRpc(level: () => PermissionLevel, switchEngine: (change: EngineSwitch) => string) {
  return (params: unknown) => {
    const mine = level();
    if (!maySwitchBack(mine)) throw new PermissionRefused(mine, "switch render engines");
    const sent = engineSwitchSchema.safeParse(params);
    if (!sent.success) throw new InvalidInput("That engine switch is not in a shape this server understands: nothing was switched.", "switch");
    return { message: switchEngine(sent.data) };
  };
}

export class NotThePairedBackup extends AppError {
  constructor() {
    super("NOT_THE_BACKUP", "Only the paired backup server copies every machine's permission level.", { status: 403 });
  }
}

/** The main's side. */
export function acceptConsole(connection: SecureConnection, side: ConsoleSide): ConnectionEvents {
  const asker = connection.peer.machineId;
  const level = () => askerLevel(asker, side.levels(), side.roster);
  return rpcServer(connection, {
    level: () => ({ ...levelAnswer(asker, level(), side.roster), backup: side.pairedBackupAt() }),
    levels: () => {
      if (connection.peer.machineId !== side.pairedBackup()) throw new NotThePairedBackup();
      return { levels: side.levels() };
    },
    groups: () => {
      if (connection.peer.machineId !== side.pairedBackup() && !seesOthers(level())) throw new PermissionRefused(level(), "see the backup groups");
      return side.groups();
    },
    saveGroups: (params) => {
      const mine = level();
      if (!mayChangeBackup(mine)) throw new PermissionRefused(mine, "change the backup groups");
      const sent = engineBackupsSchema.safeParse(params);
      if (!sent.success) throw new InvalidInput("Those backup groups are not in a shape this main understands: nothing was saved.", "groups");
      side.saveGroups(sent.data);
      return { saved: true };
    },
    switchEngine: switchEngineRpc(level, (change) => side.switchEngine(change)),
    engineHealth: engineHealthRpc(level, () => side.engineHealth()),
    switchBack: () => {
      const mine = level();
      if (!maySwitchBack(mine)) throw new PermissionRefused(mine, "switch the network back to the main server");
      return { message: side.switchBack() };
    },
    addBackup: async (params) => {
      const mine = level();
      if (!mayChangeBackup(mine)) throw new PermissionRefused(mine, "add a backup server");
      const { address } = addBackupParams.parse(params);
      return side.addBackup(address);
    },
    removeBackup: async () => {
      const mine = level();
      if (!mayChangeBackup(mine)) throw new PermissionRefused(mine, "remove the backup server");
      await side.removeBackup();
      return { removed: true };
    },
  });
}

/** The paired backup's side: a client's level from the backup's copy; everything else is the main's to do. */
export function acceptLevelQuestions(
  connection: SecureConnection,
  levels: () => Record<string, PermissionLevel>,
  roster: () => RosterEntry[],
  groups: () => EngineBackups,
  engines: { switchEngine: (change: EngineSwitch) => string; engineHealth: () => EngineWatchWireView },
): ConnectionEvents {
  const asker = connection.peer.machineId;
  const level = () => askerLevel(asker, levels(), roster);
  return rpcServer(connection, {
    level: () => levelAnswer(asker, level(), roster),
    groups: () => {
      if (!seesOthers(level())) throw new PermissionRefused(level(), "see the backup groups");
      return groups();
    },
    // While the backup serves, it switches the engines: a level-3 client's switch is checked against its copy of the levels.
    switchEngine: switchEngineRpc(level, engines.switchEngine),
    engineHealth: engineHealthRpc(level, engines.engineHealth),
  });
}

/** The asker's level; it is listed when it has a level or this server hears it as a client. */
function askerLevel(asker: string, levels: Record<string, PermissionLevel>, roster: () => RosterEntry[]): PermissionLevel {
  return levelOf(asker, levels, asker in levels || roster().some((m) => m.id === asker));
}

/** A client's level, and the other clients only when that level may see them (level 1 sees none). */
function levelAnswer(asker: string, level: PermissionLevel, roster: () => RosterEntry[]): LevelAnswer {
  return { level, machines: seesOthers(level) ? roster().filter((m) => m.id !== asker).slice(0, MAX_ROSTER) : [] };
}

function call<T>(net: PeerCaller, at: HostPort, method: string, schema: z.ZodType<T>, params: unknown = {}, timeoutMs = CONSOLE_CALL_TIMEOUT_MS): Promise<T> {
  return net.call(at, "/console", { method, params, schema, timeoutMs });
}

/** A question that changes nothing on the server: asked again once if the kept connection closes under it (net/kept-calls.ts). */
function ask<T>(net: PeerCaller, at: HostPort, method: string, schema: z.ZodType<T>): Promise<T> {
  return net.call(at, "/console", { method, params: {}, schema, timeoutMs: CONSOLE_CALL_TIMEOUT_MS, idempotent: true });
}

/** The main's answer, or "the main does not answer" in words for the page. */
async function askMain<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (error instanceof AppError && (error.code === "HANDSHAKE_FAILED" || error.code === "CONNECTION_LOST" || error.code === "TIMEOUT")) {
      throw new AppError("MAIN_UNREACHABLE", "The main server does not answer: this can only be done while it runs.", { status: 503, cause: error });
    }
    throw error;
  }
}

/** A client's side: its own level as the server at `at` has it, and the other clients it may see. */
export function askLevel(net: PeerCaller, at: HostPort): Promise<LevelAnswer> {
  return ask(net, at, "level", levelSchema);
}

/** The backup's side: every level the main holds (refused unless this backup is the main's paired one). */
export async function askAllLevels(net: PeerCaller, at: HostPort): Promise<Record<string, PermissionLevel>> {
  return (await ask(net, at, "levels", allLevelsSchema)).levels;
}

/** The backup's copy, or a client's read-only view: every backup group the main holds. */
export function askGroups(net: PeerCaller, at: HostPort): Promise<EngineBackups> {
  return ask(net, at, "groups", engineBackupsSchema);
}

/** A level-3 client's save: the main checks the groups and keeps them. */
export function askSaveGroups(net: PeerCaller, at: HostPort, backups: EngineBackups): Promise<void> {
  return askMain(async () => void (await call(net, at, "saveGroups", savedGroupsSchema, backups)));
}

/** A client's side: asks the main to switch back; resolves with the main's words, rejects with its refusal. */
export function askSwitchBack(net: PeerCaller, at: HostPort): Promise<string> {
  return askMain(async () => (await call(net, at, "switchBack", switchedSchema)).message);
}

/** A level-3 client's manual engine switch, asked of a server (the one that serves carries it out); resolves with its words. */
export function askSwitchEngine(net: PeerCaller, at: HostPort, change: EngineSwitch): Promise<string> {
  return askMain(async () => (await call(net, at, "switchEngine", switchedSchema, change)).message);
}

/** What the engine runner of the server at `at` shows (a client's Health panel, from level 2). */
export function askEngineHealth(net: PeerCaller, at: HostPort): Promise<EngineWatchWireView> {
  return askMain(() => ask(net, at, "engineHealth", engineWatchViewSchema));
}

/** A level-3 client's Add Backup server: the main runs the pairing exchange (which may take its own time to answer). */
export function askAddBackup(net: PeerCaller, at: HostPort, backup: string): Promise<{ peerName: string }> {
  return askMain(() => call(net, at, "addBackup", addedSchema, { address: backup }, PAIRING_ANSWER_MS));
}

export function askRemoveBackup(net: PeerCaller, at: HostPort): Promise<void> {
  return askMain(async () => void (await call(net, at, "removeBackup", removedSchema, {}, PAIRING_ANSWER_MS)));
}
