/**
 * The console's requests between machines on `/console`: a client asks the
 * main its permission level, and a level-3 client asks the main to switch
 * back. The handshake already proved the asker's machine id, so the main
 * answers from its own permissions file; nothing the client says about
 * itself is believed.
 */
import { z } from "zod";
import { AppError } from "../core/errors.ts";
import { DEFAULT_PERMISSION_LEVEL, maySwitchBack, PERMISSION_LEVELS, PermissionRefused, type PermissionLevel } from "../core/permissions.ts";
import { RpcClient, rpcServer } from "../net/rpc.ts";
import { connectSecure, type ConnectionEvents, type SecureConnection, type SecureSocketOptions } from "../net/secure-socket.ts";

/** A level question is small; it must not hold a page for long. */
export const CONSOLE_CALL_TIMEOUT_MS = 3000;

const levelSchema = z.object({ level: z.union(PERMISSION_LEVELS.map((l) => z.literal(l)) as [z.ZodLiteral<1>, z.ZodLiteral<2>, z.ZodLiteral<3>]) });
const switchedSchema = z.object({ message: z.string().max(400) });

export type ConsoleSide = {
  levels(): Record<string, PermissionLevel>;
  /** Switches back if this main waits in standby; throws an AppError saying why not otherwise. */
  switchBack(): string;
};

/** The main's side. */
export function acceptConsole(connection: SecureConnection, side: ConsoleSide): ConnectionEvents {
  const levelOf = () => side.levels()[connection.peer.machineId] ?? DEFAULT_PERMISSION_LEVEL;
  return rpcServer(connection, {
    level: () => ({ level: levelOf() }),
    switchBack: () => {
      const level = levelOf();
      if (!maySwitchBack(level)) throw new PermissionRefused(level, "switch the network back to the main server");
      return { message: side.switchBack() };
    },
  });
}

async function call<T>(address: string, secure: SecureSocketOptions, method: string, schema: z.ZodType<T>): Promise<T> {
  const client = new RpcClient();
  const connection = await connectSecure(address, "/console", secure, () => client.events());
  client.attach(connection);
  try {
    return await client.call(method, {}, schema, CONSOLE_CALL_TIMEOUT_MS);
  } finally {
    client.close();
  }
}

/** A client's side: its own level, as the main at `address` has it. */
export async function askLevel(address: string, secure: SecureSocketOptions): Promise<PermissionLevel> {
  return (await call(address, secure, "level", levelSchema)).level;
}

/** A client's side: asks the main to switch back; resolves with the main's words, rejects with its refusal. */
export async function askSwitchBack(address: string, secure: SecureSocketOptions): Promise<string> {
  try {
    return (await call(address, secure, "switchBack", switchedSchema)).message;
  } catch (error) {
    if (error instanceof AppError && (error.code === "HANDSHAKE_FAILED" || error.code === "CONNECTION_LOST" || error.code === "TIMEOUT")) {
      throw new AppError("MAIN_UNREACHABLE", "The main server does not answer: it can only take the network back once it is running again.", { status: 503, cause: error });
    }
    throw error;
  }
}
