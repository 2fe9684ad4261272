/**
 * The engine runner's Data Hub side (docs/design.md §Data Hub): one local app
 * that hears every engine's retained health and frame counter, and one that
 * publishes each router switch, the retained "whom the backup replaces" and
 * the decision it keeps for the next active server, and reads what the hub
 * holds when this server becomes active.
 * Values are read by the core's parsers (the forms the README documents);
 * anything else is ignored.
 */
import type { Clock, Timers } from "../core/clock.ts";
import type { FromHubFrame } from "../hub/frames.ts";
import type { Logger } from "../log.ts";
import type { InProcessApp } from "../services/app-gateway.ts";
import { HubRequests } from "../services/hub-requests.ts";
import { VideohubDriver } from "../services/router/videohub-driver.ts";
import { parseHostPort } from "../core/config.ts";
import { NO_ENGINE_BACKUPS, type EngineBackups } from "../store/backup-groups-file.ts";
import { EngineWatch } from "./engine-watch.ts";
import { parseEngineFrames, parseEngineHealth } from "../core/engine-failover-views.ts";
import { engineFramesKey, engineHealthKey } from "../core/engine-failover.ts";

const SIGNAL = /^\$understudy\/engine\/([^/]+)\/(health|frames)$/;
const SIGNAL_FILTERS = [engineHealthKey("+"), engineFramesKey("+")];

export type EngineHubParts = {
  clock: Clock;
  wallNow: () => number;
  timers: Timers;
  attachApp: (name: string, deliver: (frame: FromHubFrame) => void) => InProcessApp;
  backups: () => EngineBackups;
  heard: () => readonly { id: string; lastHeardMsAgo: number }[];
  log: Logger;
  /** The runtime's list of things to stop when it stops: the runner's close is added to it. */
  stops: (() => void)[];
};

/** The runner wired to this node's Data Hub uplink and to a Videohub at the setup's address. */
export function engineWatchOnHub(parts: EngineHubParts): { watch: EngineWatch; close(): void } {
  const requests = new HubRequests((deliver) => parts.attachApp("engine-switches", deliver), undefined, parts.timers);
  const quietly = (work: Promise<unknown>) => void work.catch((error: Error) => parts.log.warn("engine event not published", { message: error.message }));
  const watch = new EngineWatch({
    clock: parts.clock,
    wallNow: parts.wallNow,
    timers: parts.timers,
    backups: () => {
      try {
        return parts.backups();
      } catch {
        // A damaged groups file: the panel says so; the runner switches nothing.
        return NO_ENGINE_BACKUPS;
      }
    },
    heard: parts.heard,
    openRouter: (address) => {
      const at = parseHostPort(address)!;
      return new VideohubDriver({ host: at.host, port: at.port, timers: parts.timers, clock: parts.clock });
    },
    publish: (topic, data) => quietly(requests.publish(topic, data)),
    setRetained: (key, value) => quietly(requests.set(key, value)),
    readRetained: async (key) => (await requests.get(key)).value,
    log: parts.log,
  });
  const signals = parts.attachApp("engine-signals", (frame) => {
    if (frame.type !== "value") return;
    const match = SIGNAL.exec(frame.key);
    if (!match) return;
    const [, machineId, kind] = match as unknown as [string, string, "health" | "frames"];
    if (frame.value === null) return watch.forget(kind, machineId);
    try {
      if (kind === "health") watch.signal({ kind: "health", machineId, healthy: parseEngineHealth(frame.value) });
      else watch.signal({ kind: "frames", machineId, frames: parseEngineFrames(frame.value) });
    } catch {
      // Not a value an engine publishes (InvalidInput): it changes nothing.
    }
  });
  for (const filter of SIGNAL_FILTERS) signals.send({ type: "sub", filter });
  const close = () => {
    watch.deactivate();
    signals.close();
    requests.close();
  };
  parts.stops.push(close);
  return { watch, close };
}
