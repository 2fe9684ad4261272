/** `understudy [run]`: start this machine, with the setup pages and, for a network role, the peer port. */
import { homedir } from "node:os";
import { join } from "node:path";
import { CONFIG_KEYS, envName, flagName, type ConfigKey } from "../core/config.ts";
import { createLogger, type LogFormat } from "../log.ts";
import { MachineNode } from "../machine/machine-node.ts";
import { vendorPublicKey } from "../vendor-key.ts";
import { showFolderFlagProblem } from "../services/show-folder/show-folder-setting.ts";
import { takeDataDirLock } from "../store/data-dir-lock.ts";
import { parseCommand, UsageError, type Options } from "./args.ts";

/** Settings that are never flags: a password on the command line shows in every process list. */
const NOT_FLAGS: ReadonlySet<ConfigKey> = new Set(["uiPassword", "mqttPassword"]);
export const RUN_FLAG_KEYS = CONFIG_KEYS.filter((k) => !NOT_FLAGS.has(k));

export const RUN_HELP = `Usage: understudy [run] [flags]

Starts this machine. With no flags it is stand-alone and serves the setup
pages on http://127.0.0.1:7400. Flags win over UNDERSTUDY_* environment
variables, which win over config.json in the data dir (written by the setup
pages), which wins over the defaults.

  --role ROLE               standalone | client | server | main | backup
  --name NAME               machine name (default: host name)
  --data DIR                data dir (default: ~/.understudy; env UNDERSTUDY_DATA)
  --key FILE                network key file (default: DATA/network.key)
  --license FILE            license file (default: DATA/license.json)
  --ui-listen HOST:PORT     setup pages and /api (default 127.0.0.1:7400; beyond
                            loopback needs UNDERSTUDY_UI_PASSWORD)
  --ui-host NAME[,NAME]     more names the setup pages answer to (loopback, the
                            host name and its addresses always work)
  --peer-listen HOST:PORT   peer port for other machines (default 0.0.0.0:7401)
  --mqtt-listen HOST:PORT   MQTT front door for local apps (default 127.0.0.1:1883;
                            "off" disables it; beyond loopback needs UNDERSTUDY_MQTT_PASSWORD)
  --main HOST:PORT          the main server (clients, backup)
  --backup HOST:PORT        the backup server (main, clients)
  --heartbeat-ms N          heartbeat interval (default 100)
  --failover-timeout-ms N   silence before the backup takes over (default 1000)
  --sync-timeout-ms N       wait for the backup before a push goes async (default 500)
  --chunk-grace-ms N        keep unused cached chunks this long for resumes (default 86400000, a day)
  --failback auto|manual    move back to the main on its own or on a click (default auto)
  --discovery on|off        DNS-SD advertise and browse (default on)
  --discovery-interface IF  network interface for DNS-SD
  --log json|pretty         log format on stdout (default pretty)
  --show-folder DIR         the show folder the Synced storage page pushes and pulls
                            (an absolute path; fixed on the page when given here)
  --auto-pull on|off        pull into the show folder at every new revision (default off)
`;

export function defaultDataDir(env: Record<string, string | undefined>): string {
  if (env.UNDERSTUDY_DATA) return env.UNDERSTUDY_DATA;
  if (process.platform === "win32" && env.ProgramData) return join(env.ProgramData, "understudy");
  return join(homedir(), ".understudy");
}

export async function runCommand(argv: string[]): Promise<number> {
  const options: Options = { data: { type: "string" } };
  for (const key of RUN_FLAG_KEYS) options[flagName(key)] = { type: "string" };
  const { values, help } = parseCommand("understudy run", argv, options, { min: 0, max: 0 });
  if (help) {
    process.stdout.write(RUN_HELP);
    return 0;
  }
  const flags: Partial<Record<ConfigKey, string>> = {};
  for (const key of RUN_FLAG_KEYS) {
    const value = values[flagName(key)];
    if (typeof value === "string") flags[key] = value;
  }
  const env = process.env;
  // A system folder (or a link into one) named as the show folder stops the start; one saved in config.json only shows on the page.
  const [pinnedBy, pinned] = flags.showFolder !== undefined ? ["--show-folder", flags.showFolder] : [envName("showFolder"), env[envName("showFolder")]];
  const pinnedProblem = pinned === undefined || pinned === "" || pinned === "none" ? null : showFolderFlagProblem(pinned);
  if (pinnedProblem !== null) throw new UsageError(`understudy run: ${pinnedBy}: ${pinnedProblem}`);
  const dataDir = typeof values.data === "string" ? values.data : defaultDataDir(env);
  let format: LogFormat = flags.log === "json" || (flags.log === undefined && env[envName("log")] === "json") ? "json" : "pretty";
  const log = createLogger(() => format);
  // Before anything in the data dir is read or written: a second process on it would share its database and machine key.
  const lock = takeDataDirLock(dataDir);
  let node: MachineNode;
  try {
    node = await MachineNode.start({ dataDir, flags, env, vendorPublicKey: vendorPublicKey(), log });
  } catch (error) {
    lock.release();
    throw error;
  }
  format = node.state.snapshot.config.log;

  return await new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      log.info("stopping", { signal });
      node.stop().then(
        () => {
          lock.release();
          resolve(0);
        },
        (error) => {
          lock.release();
          log.error("stop failed", { message: (error as Error).message });
          resolve(1);
        },
      );
    };
    process.on("SIGTERM", () => stop("SIGTERM"));
    process.on("SIGINT", () => stop("SIGINT"));
  });
}
