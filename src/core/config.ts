/**
 * The machine's configuration: one zod schema, four layers. Precedence is
 * flags > UNDERSTUDY_* environment > config.json in the data dir > defaults.
 * Each layer is validated on its own so an error names where the bad value came from.
 */
import { z } from "zod";
import { InvalidInput } from "./errors.ts";
import { ROLES } from "./roles.ts";
import {
  DEFAULT_FAILOVER_TIMEOUT_MS,
  DEFAULT_HEARTBEAT_MS,
  MIN_FAILOVER_TIMEOUT_MS,
  MIN_HEARTBEAT_MS,
  MIN_HEARTBEATS_PER_TIMEOUT,
} from "./failure-detector.ts";

export const DEFAULT_UI_PORT = 7400;
export const DEFAULT_PEER_PORT = 7401;
export const DEFAULT_SYNC_TIMEOUT_MS = 500;
/**
 * How long cached chunks nothing names (an aborted or failed upload's, a push that never came)
 * are kept for a resume before their space is reclaimed; an upload idle this long has failed.
 */
export const DEFAULT_CHUNK_GRACE_MS = 24 * 60 * 60_000;
export const MAX_CHUNK_GRACE_MS = 30 * 24 * 60 * 60_000;
export const DEFAULT_MQTT_PORT = 1883;
export const MAX_HEARTBEAT_MS = 10_000;

export type HostPort = { host: string; port: number };

/** "host:port", "[v6]:port"; port 0 means "any free port" (tests). */
export function parseHostPort(text: string): HostPort | null {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/.exec(text.trim());
  if (!match) return null;
  const port = Number(match[3]);
  if (port > 65535) return null;
  return { host: (match[1] ?? match[2])!, port };
}

export function formatHostPort({ host, port }: HostPort): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

/** `/srv/show`, `D:\show` or `\\server\show`: what a relative path means depends on the working directory, unknown on a kiosk. */
export function isAbsolutePath(path: string): boolean {
  return path.startsWith("/") || /^[A-Za-z]:[\\/]/.test(path) || path.startsWith("\\\\");
}

const hostPort = z.string().refine((s) => parseHostPort(s) !== null, { message: "expected HOST:PORT, e.g. 10.0.0.2:7401" });
const ms = (min: number, max: number) =>
  z.coerce
    .number({ message: "expected a whole number of milliseconds" })
    .int("expected a whole number of milliseconds")
    .min(min, `at least ${min} ms`)
    .max(max, `at most ${max} ms`);

/** Every setting a machine has; the single source of truth for flags, env and config.json. */
export const configSchema = z.strictObject({
  role: z.enum(ROLES),
  name: z.string().trim().min(1).max(63).regex(/^[A-Za-z0-9][A-Za-z0-9 ._-]*$/, "letters, digits, space, dot, dash, underscore"),
  key: z.string().min(1).nullable(),
  license: z.string().min(1).nullable(),
  uiListen: hostPort,
  uiPassword: z.string().min(8, "at least 8 characters").nullable(),
  /** Extra names the setup pages answer to (comma separated), e.g. a DNS name for the machine. */
  uiHost: z.string().trim().max(1000).regex(/^[A-Za-z0-9.:\-, ]*$/, "host names separated by commas"),
  peerListen: hostPort,
  /** The MQTT front door for local apps, or "off". */
  mqttListen: z.union([z.literal("off"), hostPort], { message: 'expected HOST:PORT, e.g. 127.0.0.1:1883, or "off"' }),
  mqttPassword: z.string().min(8, "at least 8 characters").nullable(),
  main: hostPort.nullable(),
  backup: hostPort.nullable(),
  heartbeatMs: ms(MIN_HEARTBEAT_MS, MAX_HEARTBEAT_MS),
  failoverTimeoutMs: ms(MIN_FAILOVER_TIMEOUT_MS, 60_000),
  syncTimeoutMs: ms(10, 60_000),
  chunkGraceMs: ms(100, MAX_CHUNK_GRACE_MS),
  failback: z.enum(["auto", "manual"]),
  discovery: z.enum(["on", "off"]),
  discoveryInterface: z.string().min(1).nullable(),
  log: z.enum(["json", "pretty"]),
  /** The operator's show folder on this machine, kept in step with the show file (the Synced storage panel). */
  showFolder: z.string().min(1).max(4096).refine(isAbsolutePath, { message: "expected an absolute path, e.g. /srv/show or D:\\show" }).nullable(),
  /** Pull into the show folder whenever the show file's head moves. */
  autoPull: z.enum(["on", "off"]),
});
export type Config = z.infer<typeof configSchema>;
export type ConfigKey = keyof Config;
export const CONFIG_KEYS = Object.keys(configSchema.shape) as ConfigKey[];

/** What config.json may hold: any subset of the settings. */
export const configFileSchema = configSchema.partial();
export type ConfigFile = z.infer<typeof configFileSchema>;

export function defaultConfig(hostname: string): Config {
  return {
    role: "standalone",
    name: hostname.replace(/[^A-Za-z0-9 ._-]/g, "-").slice(0, 63) || "understudy",
    key: null,
    license: null,
    uiListen: `127.0.0.1:${DEFAULT_UI_PORT}`,
    uiPassword: null,
    uiHost: "",
    peerListen: `0.0.0.0:${DEFAULT_PEER_PORT}`,
    mqttListen: `127.0.0.1:${DEFAULT_MQTT_PORT}`,
    mqttPassword: null,
    main: null,
    backup: null,
    heartbeatMs: DEFAULT_HEARTBEAT_MS,
    failoverTimeoutMs: DEFAULT_FAILOVER_TIMEOUT_MS,
    syncTimeoutMs: DEFAULT_SYNC_TIMEOUT_MS,
    chunkGraceMs: DEFAULT_CHUNK_GRACE_MS,
    failback: "auto",
    discovery: "on",
    discoveryInterface: null,
    log: "pretty",
    showFolder: null,
    autoPull: "off",
  };
}

/** Flag name for a setting: heartbeatMs -> heartbeat-ms. */
export function flagName(key: ConfigKey): string {
  return key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

/** Environment variable for a setting: heartbeatMs -> UNDERSTUDY_HEARTBEAT_MS. */
export function envName(key: ConfigKey): string {
  return `UNDERSTUDY_${flagName(key).replace(/-/g, "_").toUpperCase()}`;
}

/** Values given as text (flags, env): "" and "none" clear a nullable setting. */
function fromText(key: ConfigKey, text: string): unknown {
  const nullable = configSchema.shape[key].safeParse(null).success;
  return nullable && (text === "" || text === "none") ? null : text;
}

function validateLayer(values: Record<string, unknown>, describe: (key: ConfigKey) => string): ConfigFile {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(values)) {
    if (value === undefined) continue;
    const schema = configSchema.shape[key as ConfigKey];
    if (!schema) throw new InvalidInput(`${describe(key as ConfigKey)} is not a setting understudy knows.`, key);
    const parsed = schema.safeParse(value);
    if (!parsed.success) {
      throw new InvalidInput(`${describe(key as ConfigKey)}: ${parsed.error.issues[0]?.message ?? "invalid value"} (got ${JSON.stringify(value)}).`, key);
    }
    out[key] = parsed.data;
  }
  return out as ConfigFile;
}

export function configFromFlags(flags: Partial<Record<ConfigKey, string>>): ConfigFile {
  const values = Object.fromEntries(Object.entries(flags).map(([k, v]) => [k, v === undefined ? undefined : fromText(k as ConfigKey, v)]));
  return validateLayer(values, (key) => `--${flagName(key)}`);
}

export function configFromEnv(env: Record<string, string | undefined>): ConfigFile {
  const values: Record<string, unknown> = {};
  for (const key of CONFIG_KEYS) {
    const text = env[envName(key)];
    if (text !== undefined) values[key] = fromText(key, text);
  }
  return validateLayer(values, envName);
}

/** Parses config.json's text; `file` is its path, named in every error. */
export function configFromFileText(text: string, file: string): ConfigFile {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new InvalidInput(`${file} is not valid JSON (${(error as Error).message}). Fix or delete the file; it was left as it is.`, "config");
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw new InvalidInput(`${file} must hold a JSON object of settings. Fix or delete the file; it was left as it is.`, "config");
  }
  return validateLayer(json as Record<string, unknown>, (key) => `${file}, field "${key}"`);
}

/** Merges the layers (highest precedence first) over the defaults and checks the rules between settings. */
export function resolveConfig(defaults: Config, ...layersHighestFirst: ConfigFile[]): Config {
  const merged: Config = { ...defaults };
  for (const layer of [...layersHighestFirst].reverse()) Object.assign(merged, layer);
  checkConfigRules(merged);
  return merged;
}

/** Rules between settings; each message says which setting to change. */
export function checkConfigRules(config: Config): void {
  if (config.failoverTimeoutMs < MIN_HEARTBEATS_PER_TIMEOUT * config.heartbeatMs) {
    throw new InvalidInput(
      `--failover-timeout-ms (${config.failoverTimeoutMs}) must be at least ${MIN_HEARTBEATS_PER_TIMEOUT} times --heartbeat-ms (${config.heartbeatMs}), or a lost heartbeat or two would fail over.`,
      "failoverTimeoutMs",
    );
  }
  if (config.role === "client" && config.main === null) {
    throw new InvalidInput("A client needs the main server's address: --main HOST:PORT (or set it on the setup page).", "main");
  }
  const ui = parseHostPort(config.uiListen)!;
  if (!isLoopback(ui.host) && config.uiPassword === null) {
    throw new InvalidInput(
      `--ui-listen ${config.uiListen} opens the setup pages to the network, so a password is required: set ${envName("uiPassword")} (at least 8 characters).`,
      "uiListen",
    );
  }
  const mqtt = config.mqttListen === "off" ? null : parseHostPort(config.mqttListen)!;
  if (mqtt && !isLoopback(mqtt.host) && config.mqttPassword === null) {
    throw new InvalidInput(
      `--mqtt-listen ${config.mqttListen} opens the MQTT front door to the network, so a password is required: set ${envName("mqttPassword")} (at least 8 characters).`,
      "mqttListen",
    );
  }
}

/** The names of --ui-host, one per entry, lower case. */
export function uiHostNames(config: Pick<Config, "uiHost">): string[] {
  return config.uiHost
    .split(",")
    .map((name) => name.trim().toLowerCase())
    .filter((name) => name !== "");
}

export function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || /^127\.\d+\.\d+\.\d+$/.test(host);
}
