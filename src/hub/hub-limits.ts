/**
 * The Data Hub's bounds and HubCore's options (docs/design.md §Data Hub): what one connection,
 * one app, one machine and the whole hub may hold. The main and the backup use
 * the same defaults, so what one accepted the other holds too.
 */
import { DEFAULT_RETAINED_SHARE_LIMITS, type RetainedShareLimits } from "./retained-shares.ts";
import type { HubStatePersistence } from "./retained-state.ts";
import type { ReplayLimits } from "./replay-ring.ts";

export type HubLimits = {
  readonly maxFiltersPerConnection: number;
  readonly maxServicesPerConnection: number;
  readonly maxPendingCalls: number;
  /** Retained keys and bytes (key plus JSON value), for the whole hub, per machine and per app (origin): retained-shares.ts. */
  readonly maxRetainedKeys: number;
  readonly maxRetainedBytes: number;
  readonly maxRetainedKeysPerMachine: number;
  readonly maxRetainedBytesPerMachine: number;
  readonly maxRetainedKeysPerApp: number;
  readonly maxRetainedBytesPerApp: number;
  readonly maxTrackedOrigins: number;
};

const shares = DEFAULT_RETAINED_SHARE_LIMITS;

export const DEFAULT_HUB_LIMITS: HubLimits = {
  /** A connection is a whole node (all its apps' filters together): as many as a node may hold (uplink-options.ts DEFAULT_MAX_FILTERS). */
  maxFiltersPerConnection: 2_000,
  maxServicesPerConnection: 100,
  maxPendingCalls: 10_000,
  maxRetainedKeys: shares.maxKeys,
  maxRetainedBytes: shares.maxBytes,
  maxRetainedKeysPerMachine: shares.maxKeysPerMachine,
  maxRetainedBytesPerMachine: shares.maxBytesPerMachine,
  maxRetainedKeysPerApp: shares.maxKeysPerApp,
  maxRetainedBytesPerApp: shares.maxBytesPerApp,
  maxTrackedOrigins: 10_000,
};

export function retainedShareLimits(l: HubLimits): RetainedShareLimits {
  return {
    maxKeys: l.maxRetainedKeys,
    maxBytes: l.maxRetainedBytes,
    maxKeysPerMachine: l.maxRetainedKeysPerMachine,
    maxBytesPerMachine: l.maxRetainedBytesPerMachine,
    maxKeysPerApp: l.maxRetainedKeysPerApp,
    maxBytesPerApp: l.maxRetainedBytesPerApp,
  };
}

export type HubCoreOptions = {
  /** The epoch this server knows (persisted by the failover layer). Default 0. */
  epoch?: number;
  /** Whether this server is the active one and takes writes. Default false. */
  writable?: boolean;
  /** Keeps retained state durable; loaded once here. Without it, state is in memory only. */
  persistence?: HubStatePersistence;
  limits?: Partial<HubLimits>;
  /** Bounds of the epoch replay buffer (DEFAULT_REPLAY_LIMITS); `maxAgeMs` applies when the runner calls `trimReplay`. */
  replay?: Partial<ReplayLimits>;
  /** Names a run of the replay ring (default: random); a new epoch appends `-e<epoch>`. Tests pick it to compare frames. */
  streamId?: string;
};

export type ReplayStats = {
  /** Messages of the current epoch kept for replay, and their size. */
  readonly buffered: number;
  readonly bufferedBytes: number;
  /** Messages of the current epoch no longer kept (bounds or age). */
  readonly dropped: number;
  /** Replays done (since this hub started), the messages they sent, and how many were reported REPLAY_INCOMPLETE. */
  readonly replays: number;
  readonly replayedMessages: number;
  readonly incomplete: number;
};
