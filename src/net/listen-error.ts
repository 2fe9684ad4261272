/** Turns a failed bind into a message that says which setting to change. */
import { AppError } from "../core/errors.ts";
import { formatHostPort, type HostPort } from "../core/config.ts";

export function listenError(error: unknown, at: HostPort, flag: string): AppError {
  const code = (error as { code?: string }).code;
  const where = formatHostPort(at);
  if (code === "EADDRINUSE") {
    return new AppError("PORT_IN_USE", `${where} (${flag}) is already in use: is another understudy running? Stop it or choose another port with ${flag}.`, { cause: error });
  }
  if (code === "EADDRNOTAVAIL") {
    return new AppError("ADDRESS_NOT_HERE", `${where} (${flag}) is not an address of this machine. Use one of its own addresses, or 0.0.0.0.`, { cause: error });
  }
  return new AppError("LISTEN_FAILED", `Could not listen on ${where} (${flag}): ${(error as Error).message}`, { cause: error });
}
