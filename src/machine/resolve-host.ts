/** Host names typed for --main/--backup, resolved: UDP heartbeats need an IP address. */
import { lookup } from "node:dns/promises";
import { isIP } from "node:net";
import type { HostPort } from "../core/config.ts";
import { AppError } from "../core/errors.ts";

/** Resolved once when the setting is applied (start, or a save on the setup page). */
export async function resolveHost(at: HostPort | null): Promise<HostPort | null> {
  if (at === null || isIP(at.host) !== 0) return at;
  try {
    const { address } = await lookup(at.host);
    return { host: address, port: at.port };
  } catch (error) {
    throw new AppError("HOST_UNKNOWN", `Cannot find the address of "${at.host}": use its IP address, or check the name on the network.`, { cause: error });
  }
}
