/**
 * "Test connection" for the Backup groups panel (docs/design.md
 * §Render-engine backups): connects once with the production driver, reads
 * the state dump, says what it found (model, port counts, locked
 * destinations) or why not, and closes. It saves nothing and routes nothing.
 */
import type { Clock, Timers } from "../../core/clock.ts";
import { RouterError, type RouterSnapshot } from "../../core/router.ts";
import { tcpTextDialer, type TextDialer } from "../../net/tcp-text.ts";
import { VideohubDriver } from "./videohub-driver.ts";

/** The whole test, from dialling to the end of the dump, must finish within this. */
export const DEFAULT_PROBE_TIMEOUT_MS = 4_000;
/** How much of what a device said is kept to tell a Videohub from something else. */
const SEEN_CHARS = 4_096;

export interface RouterProbe {
  model: string;
  inputs: number;
  outputs: number;
  /** Destinations (zero-based) locked by another client: a failover onto them would not happen. */
  lockedByOthers: number[];
}

export interface ProbeOptions {
  host: string;
  port: number;
  clock: Clock;
  timers: Timers;
  timeoutMs?: number;
  dialer?: TextDialer;
}

/** Resolves with what the router reported; rejects with a RouterError whose message says why, in words. */
export async function probeVideohub(options: ProbeOptions): Promise<RouterProbe> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_PROBE_TIMEOUT_MS;
  const where = `${options.host}:${options.port}`;
  let seen = "";
  let dialled = false;
  let fail: (error: RouterError) => void = () => {};
  const dial = options.dialer ?? tcpTextDialer;
  const spying: TextDialer = async (host, port, handlers) => {
    const connection = await dial(host, port, {
      data: (text) => {
        if (seen.length < SEEN_CHARS) seen += text.slice(0, SEEN_CHARS - seen.length);
        // A first line that is no Videohub header: say so now rather than at the deadline.
        const newline = seen.indexOf("\n");
        if (newline >= 0 && !VIDEOHUB_START.test(seen.slice(0, newline + 1))) return fail(notAVideohub(where, seen, null));
        handlers.data(text);
      },
      closed: handlers.closed,
    });
    dialled = true;
    return connection;
  };
  // One attempt: the back-off is longer than the test, so the driver never dials twice.
  const driver = new VideohubDriver({
    host: options.host,
    port: options.port,
    clock: options.clock,
    timers: options.timers,
    dialer: spying,
    timings: { connectTimeoutMs: timeoutMs, ackTimeoutMs: timeoutMs, backoffMinMs: timeoutMs * 10, backoffMaxMs: timeoutMs * 10 },
  });
  let protocolError: RouterError | null = null;
  driver.onEvent((event) => {
    if (event.kind === "error" && protocolError === null) protocolError = event.error;
  });
  let stopTimer = () => {};
  // The dial itself may hang (an address where nothing answers SYN): the test's own deadline covers it.
  const deadline = new Promise<never>((_, reject) => {
    fail = reject;
    stopTimer = options.timers.after(timeoutMs, () => reject(new RouterError("ROUTER_TIMEOUT", `no answer from ${where} within ${timeoutMs / 1000} s`)));
  });
  try {
    const snapshot = await Promise.race([driver.connect(), deadline]);
    return found(snapshot);
  } catch (error) {
    throw explain(error, { where, dialled, seen, protocolError, timeoutMs });
  } finally {
    stopTimer();
    driver.close();
  }
}

function found(s: RouterSnapshot): RouterProbe {
  return { model: s.model, inputs: s.inputCount, outputs: s.outputCount, lockedByOthers: s.locks.flatMap((l, d) => (l === "L" ? [d] : [])) };
}

const VIDEOHUB_START = /^(PROTOCOL PREAMBLE|VIDEOHUB DEVICE):/m;

/** The driver's error, told as the operator needs it for a test: refused, timeout, not a Videohub, a cut dump, a huge one. */
function explain(error: unknown, facts: { where: string; dialled: boolean; seen: string; protocolError: RouterError | null; timeoutMs: number }): RouterError {
  const { where, seen, protocolError, timeoutMs } = facts;
  if (!(error instanceof RouterError)) return new RouterError("ROUTER_UNREACHABLE", `cannot reach ${where}: ${(error as Error).message}`, error);
  const notVideohub = seen !== "" && !VIDEOHUB_START.test(seen);
  switch (error.code) {
    case "ROUTER_TOO_LARGE":
      return new RouterError("ROUTER_TOO_LARGE", `${where} sent more than a Videohub's state dump can hold (${error.message.replace(/^the router sent /, "").replace(/:.*$/, "")}): is it a Videohub?`, error);
    case "ROUTER_TIMEOUT":
      if (notVideohub) return notAVideohub(where, seen, error);
      if (!facts.dialled) return error;
      if (seen === "") return new RouterError("ROUTER_TIMEOUT", `${where} accepted the connection but sent nothing within ${timeoutMs / 1000} s: is it a Videohub, and is this its Ethernet protocol port (9990)?`, error);
      return new RouterError("ROUTER_TIMEOUT", `${where} began its state dump but did not finish it within ${timeoutMs / 1000} s${protocolError ? ` (${protocolError.message})` : ""}`, error);
    case "ROUTER_UNREACHABLE": {
      if (notVideohub) return notAVideohub(where, seen, error);
      if (seen !== "") return new RouterError("ROUTER_PROTOCOL", `${where} closed the connection in the middle of its state dump: try again, or restart the router`, error);
      const cause = error.cause as { code?: string } | undefined;
      if (cause?.code === "ECONNREFUSED") return new RouterError("ROUTER_UNREACHABLE", `${where} refused the connection: nothing listens there. Check the router's IP address and that it is on`, error);
      return new RouterError("ROUTER_UNREACHABLE", `cannot reach ${where}: check the router's IP address, that it is on and on this network`, error);
    }
    default:
      return error;
  }
}

function notAVideohub(where: string, seen: string, cause: RouterError | null): RouterError {
  const firstLine = JSON.stringify(seen.split("\n")[0]!.replace(/\r$/, "").slice(0, 40));
  return new RouterError("ROUTER_PROTOCOL", `${where} answered, but not as a Videohub does (it began with ${firstLine}): check the address and port`, cause ?? undefined);
}
