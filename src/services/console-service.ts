/**
 * The console's requests between machines on `/console`: a client asks the
 * main its permission level, and a level-3 client asks the main to switch
 * back, add a backup server or remove it. The paired backup copies every
 * level from the main and answers clients' level questions from its copy, so
 * a client started while the main is down keeps its rights. The handshake
 * already proved the asker's machine id, so a server answers from its own
 * permissions file; nothing the client says about itself is believed.
 */
import { z } from "zod";
import { AppError } from "../core/errors.ts";
import { DEFAULT_PERMISSION_LEVEL, mayChangeBackup, maySwitchBack, PERMISSION_LEVELS, PermissionRefused, type PermissionLevel } from "../core/permissions.ts";
import { RpcClient, rpcServer } from "../net/rpc.ts";
import { permissionLevelsSchema } from "../store/permissions-file.ts";
import { connectSecure, type ConnectionEvents, type SecureConnection, type SecureSocketOptions } from "../net/secure-socket.ts";

/** A level question is small; it must not hold a page for long. */
export const CONSOLE_CALL_TIMEOUT_MS = 3000;
/** Adding or removing a backup waits for the main's own pairing exchange with it. */
const PAIRING_ANSWER_MS = 12_000;

const levelSchema = z.object({ level: z.union(PERMISSION_LEVELS.map((l) => z.literal(l)) as [z.ZodLiteral<1>, z.ZodLiteral<2>, z.ZodLiteral<3>]) });
const switchedSchema = z.object({ message: z.string().max(400) });
const addBackupParams = z.object({ address: z.string().max(300) });
const addedSchema = z.object({ peerName: z.string().max(64) });
const removedSchema = z.object({ removed: z.literal(true) });
const allLevelsSchema = z.object({ levels: permissionLevelsSchema });

export type ConsoleSide = {
  levels(): Record<string, PermissionLevel>;
  /** Switches back if this main waits in standby; throws an AppError saying why not otherwise. */
  switchBack(): string;
  /** Add Backup server / remove it, as on the main's own Machines panel. */
  addBackup(address: string): Promise<{ peerName: string }>;
  removeBackup(): Promise<void>;
  /** The machine id of the paired backup (the only one that may copy every level), or null. */
  pairedBackup(): string | null;
};

export class NotThePairedBackup extends AppError {
  constructor() {
    super("NOT_THE_BACKUP", "Only the paired backup server copies every machine's permission level.", { status: 403 });
  }
}

/** The main's side. */
export function acceptConsole(connection: SecureConnection, side: ConsoleSide): ConnectionEvents {
  const levelOf = () => side.levels()[connection.peer.machineId] ?? DEFAULT_PERMISSION_LEVEL;
  return rpcServer(connection, {
    level: () => ({ level: levelOf() }),
    levels: () => {
      if (connection.peer.machineId !== side.pairedBackup()) throw new NotThePairedBackup();
      return { levels: side.levels() };
    },
    switchBack: () => {
      const level = levelOf();
      if (!maySwitchBack(level)) throw new PermissionRefused(level, "switch the network back to the main server");
      return { message: side.switchBack() };
    },
    addBackup: async (params) => {
      const level = levelOf();
      if (!mayChangeBackup(level)) throw new PermissionRefused(level, "add a backup server");
      const { address } = addBackupParams.parse(params);
      return side.addBackup(address);
    },
    removeBackup: async () => {
      const level = levelOf();
      if (!mayChangeBackup(level)) throw new PermissionRefused(level, "remove the backup server");
      await side.removeBackup();
      return { removed: true };
    },
  });
}

/** The paired backup's side: a client's level from the backup's copy; everything else is the main's to do. */
export function acceptLevelQuestions(connection: SecureConnection, levels: () => Record<string, PermissionLevel>): ConnectionEvents {
  return rpcServer(connection, { level: () => ({ level: levels()[connection.peer.machineId] ?? DEFAULT_PERMISSION_LEVEL }) });
}

async function call<T>(address: string, secure: SecureSocketOptions, method: string, schema: z.ZodType<T>, params: unknown = {}, timeoutMs = CONSOLE_CALL_TIMEOUT_MS): Promise<T> {
  const client = new RpcClient();
  const connection = await connectSecure(address, "/console", secure, () => client.events());
  client.attach(connection);
  try {
    return await client.call(method, params, schema, timeoutMs);
  } finally {
    client.close();
  }
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

/** A client's side: its own level, as the main at `address` has it. */
export async function askLevel(address: string, secure: SecureSocketOptions): Promise<PermissionLevel> {
  return (await call(address, secure, "level", levelSchema)).level;
}

/** The backup's side: every level the main holds (refused unless this backup is the main's paired one). */
export async function askAllLevels(address: string, secure: SecureSocketOptions): Promise<Record<string, PermissionLevel>> {
  return (await call(address, secure, "levels", allLevelsSchema)).levels;
}

/** A client's side: asks the main to switch back; resolves with the main's words, rejects with its refusal. */
export function askSwitchBack(address: string, secure: SecureSocketOptions): Promise<string> {
  return askMain(async () => (await call(address, secure, "switchBack", switchedSchema)).message);
}

/** A level-3 client's Add Backup server: the main runs the pairing exchange (which may take its own time to answer). */
export function askAddBackup(address: string, secure: SecureSocketOptions, backup: string): Promise<{ peerName: string }> {
  return askMain(() => call(address, secure, "addBackup", addedSchema, { address: backup }, PAIRING_ANSWER_MS));
}

export function askRemoveBackup(address: string, secure: SecureSocketOptions): Promise<void> {
  return askMain(async () => void (await call(address, secure, "removeBackup", removedSchema, {}, PAIRING_ANSWER_MS)));
}
