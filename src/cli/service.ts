/**
 * `understudy service install|uninstall|status`: start this machine at boot
 * with the flags given, the same on every kiosk (issue 18 finding 11). Linux
 * gets a systemd unit, Windows a service run by the WinSW wrapper shipped
 * beside the executable (service-unit.ts says why). Every system command and
 * Windows file goes through `ServiceDeps`, so tests never touch the real system.
 */
import { existsSync, mkdirSync, rmSync } from "node:fs";
import { isAbsolute, join, resolve, win32 } from "node:path";
import { configFromFlags, flagName, type ConfigKey } from "../core/config.ts";
import { AppError } from "../core/errors.ts";
import { writeFileAtomic } from "../store/atomic-file.ts";
import { parseCommand, UsageError, type Options } from "./args.ts";
import { defaultDataDir, RUN_FLAG_KEYS } from "./run.ts";
import { DEFAULT_SERVICE_NAME, DEFAULT_UNIT_DIR, systemdUnit, windowsInstallCommands, windowsUninstallCommands, windowsWrapperName, winswConfig } from "./service-unit.ts";

export type CommandResult = { code: number; out: string; err: string };
export type ServiceDeps = {
  platform: NodeJS.Platform;
  executable: string;
  env: Record<string, string | undefined>;
  run: (argv: string[]) => Promise<CommandResult>;
  print: (line: string) => void;
  /** Windows: whether the service wrapper is beside the executable, and writing its configuration there. */
  exists: (path: string) => boolean;
  write: (path: string, text: string) => void;
};

export const SERVICE_HELP = `Usage:
  understudy service install [--unit-dir DIR] [--service-name NAME] [--no-start] [RUN FLAGS] [-- RUN FLAGS]
  understudy service uninstall [--unit-dir DIR] [--service-name NAME]
  understudy service status [--unit-dir DIR] [--service-name NAME]

Installs understudy to start at boot with the given "understudy run" flags
(see "understudy run --help"), restarted when it fails. On Linux: a systemd
unit (default in /etc/systemd/system; logs in "journalctl -u understudy"),
enabled and started unless --no-start. On Windows: a service run by WinSW,
which must be beside understudy.exe as understudy-service.exe (see README).
The data dir is written into the service as an absolute path (--data, or the
default data dir of the user who installs). Run as root / Administrator.
`;

const SERVICE_OPTIONS = {
  "unit-dir": { type: "string" },
  "service-name": { type: "string" },
  "no-start": { type: "boolean" },
} as const satisfies Options;

/** Flags naming files: the service starts in another folder (/ under systemd), so they are made absolute. */
const PATH_FLAGS = new Set(["data", "key", "license"]);

function runOptions(): Options {
  const options: Options = { data: { type: "string" } };
  for (const key of RUN_FLAG_KEYS) options[flagName(key)] = { type: "string" };
  return options;
}

export async function serviceCommand(argv: string[], deps: ServiceDeps = systemDeps()): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === "--help" || sub === "-h") {
    process.stdout.write(SERVICE_HELP);
    return sub === undefined ? 2 : 0;
  }
  if (sub !== "install" && sub !== "uninstall" && sub !== "status") {
    throw new UsageError(`understudy service: unknown command "${sub}" (see "understudy service --help")`);
  }
  const command = `understudy service ${sub}`;
  const split = rest.indexOf("--");
  const before = split === -1 ? rest : rest.slice(0, split);
  const after = split === -1 ? [] : rest.slice(split + 1);
  const options: Options = sub === "install" ? { ...SERVICE_OPTIONS, ...runOptions() } : { "unit-dir": SERVICE_OPTIONS["unit-dir"], "service-name": SERVICE_OPTIONS["service-name"] };
  const { values, help } = parseCommand(command, before, options, { min: 0, max: 0 });
  if (help) {
    process.stdout.write(SERVICE_HELP);
    return 0;
  }
  if (sub !== "install" && after.length > 0) throw new UsageError(`${command}: takes no run flags (see "understudy service --help")`);
  const name = typeof values["service-name"] === "string" ? values["service-name"] : DEFAULT_SERVICE_NAME;
  if (!/^[A-Za-z0-9_.@-]{1,64}$/.test(name)) throw new UsageError(`${command}: --service-name "${name}" may hold only letters, digits and _ . @ -`);
  const unitDir = typeof values["unit-dir"] === "string" ? resolve(values["unit-dir"]) : DEFAULT_UNIT_DIR;
  if (deps.platform !== "linux" && deps.platform !== "win32") throw new UsageError(`${command}: works on Linux (systemd) and Windows only, not on ${deps.platform}`);
  if (sub === "install") {
    const runArgs = installRunArgs(command, values, after, deps);
    return deps.platform === "linux" ? installLinux(name, unitDir, runArgs, values["no-start"] === true, deps) : installWindows(command, name, runArgs, values["no-start"] === true, deps);
  }
  if (sub === "uninstall") return deps.platform === "linux" ? uninstallLinux(name, unitDir, deps) : runAll(windowsUninstallCommands(wrapperOf(command, name, deps)), deps, { tolerateFirst: true });
  return deps.platform === "linux" ? statusLinux(name, unitDir, deps) : statusWindows(name, deps);
}

/** The `run` arguments the service gets: flags before and after `--`, checked as `understudy run` would, paths absolute, --data pinned. */
function installRunArgs(command: string, values: Record<string, unknown>, after: string[], deps: ServiceDeps): string[] {
  const runValues: Record<string, string> = {};
  const given = (key: string, value: string) => {
    if (runValues[key] !== undefined) throw new UsageError(`${command}: --${key} given twice`);
    runValues[key] = value;
  };
  for (const key of ["data", ...RUN_FLAG_KEYS.map(flagName)]) if (typeof values[key] === "string") given(key, values[key]);
  const tail = parseCommand(`${command} --`, after, runOptions(), { min: 0, max: 0 });
  if (tail.help) throw new UsageError(`${command}: --help is not a run flag`);
  for (const [key, value] of Object.entries(tail.values)) if (typeof value === "string") given(key, value);
  const flags: Partial<Record<ConfigKey, string>> = {};
  for (const key of RUN_FLAG_KEYS) if (runValues[flagName(key)] !== undefined) flags[key] = runValues[flagName(key)];
  try {
    configFromFlags(flags);
  } catch (error) {
    if (error instanceof AppError) throw new UsageError(`${command}: ${error.message}`);
    throw error;
  }
  runValues.data ??= defaultDataDir(deps.env);
  const args: string[] = [];
  for (const [key, value] of Object.entries(runValues)) args.push(`--${key}`, PATH_FLAGS.has(key) && !isAbsolute(value) ? resolve(value) : value);
  return args;
}

async function installLinux(name: string, unitDir: string, runArgs: string[], noStart: boolean, deps: ServiceDeps): Promise<number> {
  const path = join(unitDir, `${name}.service`);
  mkdirSync(unitDir, { recursive: true });
  writeFileAtomic(path, systemdUnit(deps.executable, runArgs));
  deps.print(`wrote ${path}`);
  if (noStart) {
    deps.print(`not started (--no-start): "systemctl daemon-reload && systemctl enable --now ${name}" starts it`);
    return 0;
  }
  const code = await runAll([["systemctl", "daemon-reload"], ["systemctl", "enable", "--now", `${name}.service`]], deps);
  if (code === 0) deps.print(`${name} is enabled and started; its log: journalctl -u ${name}`);
  return code;
}

async function uninstallLinux(name: string, unitDir: string, deps: ServiceDeps): Promise<number> {
  const path = join(unitDir, `${name}.service`);
  if (!existsSync(path)) {
    deps.print(`${name} is not installed (no ${path})`);
    return 0;
  }
  // Stopping a unit that is not running fails harmlessly: the file is removed either way.
  await runAll([["systemctl", "disable", "--now", `${name}.service`]], deps, { tolerateFirst: true });
  rmSync(path, { force: true });
  deps.print(`removed ${path}`);
  return runAll([["systemctl", "daemon-reload"]], deps);
}

async function statusLinux(name: string, unitDir: string, deps: ServiceDeps): Promise<number> {
  const path = join(unitDir, `${name}.service`);
  if (!existsSync(path)) {
    deps.print(`${name}: not installed (no ${path})`);
    return 3;
  }
  const active = (await deps.run(["systemctl", "is-active", `${name}.service`])).out.trim() || "unknown";
  const enabled = (await deps.run(["systemctl", "is-enabled", `${name}.service`])).out.trim() || "unknown";
  deps.print(`${name}: installed (${path}), ${active === "active" ? "running" : `not running (${active})`}, ${enabled === "enabled" ? "starts at boot" : `does not start at boot (${enabled})`}`);
  return active === "active" ? 0 : 3;
}

/** The WinSW executable beside understudy.exe, named for the service; refused, saying what to put where, when it is missing. */
function wrapperOf(command: string, name: string, deps: ServiceDeps): string {
  const wrapper = win32.join(win32.dirname(deps.executable), `${windowsWrapperName(name)}.exe`);
  if (!deps.exists(wrapper)) {
    throw new UsageError(`${command}: ${wrapper} is missing: put WinSW (WinSW-x64.exe, v2.12 or later, github.com/winsw/winsw) there under that name; a Windows service needs it to start understudy`);
  }
  return wrapper;
}

async function installWindows(command: string, name: string, runArgs: string[], noStart: boolean, deps: ServiceDeps): Promise<number> {
  // WinSW expands %NAME% in its configuration: a flag holding % would reach understudy changed.
  const expanded = runArgs.find((arg) => arg.includes("%"));
  if (expanded !== undefined) throw new UsageError(`${command}: "${expanded}" holds a %, which the Windows service wrapper would expand; choose a value without it`);
  const wrapper = wrapperOf(command, name, deps);
  const config = wrapper.replace(/\.exe$/i, ".xml");
  deps.write(config, winswConfig(name, deps.executable, runArgs));
  deps.print(`wrote ${config}`);
  const code = await runAll(windowsInstallCommands(wrapper, !noStart), deps);
  if (code === 0) deps.print(`${name} is installed${noStart ? ` (not started: "sc.exe start ${name}" starts it)` : " and started"}; its log: ${wrapper.replace(/\.exe$/i, ".out.log")}`);
  return code;
}

async function statusWindows(name: string, deps: ServiceDeps): Promise<number> {
  const query = await deps.run(["sc.exe", "query", name]);
  if (query.code !== 0) {
    deps.print(`${name}: not installed`);
    return 3;
  }
  const state = /STATE\s*:\s*\d+\s+(\w+)/.exec(query.out)?.[1] ?? "UNKNOWN";
  deps.print(`${name}: installed, ${state === "RUNNING" ? "running" : `not running (${state.toLowerCase()})`}`);
  return state === "RUNNING" ? 0 : 3;
}

/** Runs the commands in order and stops at the first failure, printed as one line. */
async function runAll(commands: string[][], deps: ServiceDeps, opts: { tolerateFirst?: boolean } = {}): Promise<number> {
  for (const [i, argv] of commands.entries()) {
    const result = await deps.run(argv);
    if (result.code === 0 || (opts.tolerateFirst && i === 0)) continue;
    const why = (result.err || result.out).trim().split("\n")[0] ?? "";
    throw new AppError("SERVICE_COMMAND_FAILED", `"${argv.join(" ")}" failed (exit ${result.code})${why ? `: ${why}` : ""}. Run as root / Administrator?`, { status: 500 });
  }
  return 0;
}

function systemDeps(): ServiceDeps {
  return {
    platform: process.platform,
    executable: process.execPath,
    env: process.env,
    print: (line) => process.stdout.write(`${line}\n`),
    exists: existsSync,
    write: (path, text) => writeFileAtomic(path, text),
    async run(argv) {
      const proc = Bun.spawn(argv, { stdin: "ignore", stdout: "pipe", stderr: "pipe" });
      const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
      return { code, out, err };
    },
  };
}
