/** Structured log lines on stdout: JSON for machines (kiosks, log shippers), pretty for people. */
import type { Clock } from "./core/clock.ts";
import { wallClock } from "./net/system-time.ts";

export type LogFormat = "json" | "pretty";
export type LogFields = Record<string, unknown>;

export interface Logger {
  info(event: string, fields?: LogFields): void;
  warn(event: string, fields?: LogFields): void;
  error(event: string, fields?: LogFields): void;
}

export function createLogger(format: () => LogFormat, write: (line: string) => void = (l) => process.stdout.write(l), clock: Clock = wallClock): Logger {
  const emit = (level: string, event: string, fields: LogFields = {}) => {
    const time = new Date(clock.now()).toISOString();
    if (format() === "json") {
      write(`${JSON.stringify({ time, level, event, ...fields })}\n`);
      return;
    }
    const rest = Object.entries(fields)
      .map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`)
      .join(" ");
    write(`${time.slice(11, 23)} ${level.padEnd(5)} ${event}${rest ? ` ${rest}` : ""}\n`);
  };
  return {
    info: (event, fields) => emit("info", event, fields),
    warn: (event, fields) => emit("warn", event, fields),
    error: (event, fields) => emit("error", event, fields),
  };
}
