/** Turns a failed bind into a message that says which setting to change. */
import { AppError } from "../core/errors.ts";
import { formatHostPort, type HostPort } from "../core/config.ts";
import { portHolder, type PortHolder } from "./port-holder.ts";

export function listenError(error: unknown, at: HostPort, flag: string, holderOf: (port: number) => PortHolder | null = portHolder): AppError {
  const code = (error as { code?: string }).code;
  const where = formatHostPort(at);
  if (code === "EADDRINUSE") {
    const holder = holderOf(at.port);
    const by = holder ? `by process ${holder.pid} (${holder.command})` : "(is another understudy running?)";
    return new AppError("PORT_IN_USE", `${where} (${flag}) is already in use ${by}. Stop it or choose another port with ${flag}.`, { cause: error });
  }
  if (code === "EADDRNOTAVAIL") {
    return new AppError("ADDRESS_NOT_HERE", `${where} (${flag}) is not an address of this machine. Use one of its own addresses, or 0.0.0.0.`, { cause: error });
  }
  return new AppError("LISTEN_FAILED", `Could not listen on ${where} (${flag}): ${(error as Error).message}`, { cause: error });
}
