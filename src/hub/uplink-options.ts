/**
 * What a node's uplink (hub-uplink.ts) is built with: how it reaches its apps
 * and the server, and its bounds. Every bound has a DEFAULT_* here or in the
 * part that applies it (outbound-queue.ts, acked-writes.ts).
 */
import type { ErrorFrame, FromHubFrame, ToHubFrame } from "./frames.ts";

export type AppId = string;
/** Deliver one frame to these local apps (encode once, write to each). */
export type DeliverToApps = (frame: FromHubFrame, apps: readonly AppId[]) => void;
/** `text`, when given, is the frame's JSON already made (a queued write): send it rather than encode again. */
export type SendToServer = (frame: ToHubFrame, text?: string) => void;

export const DEFAULT_MAX_PENDING_REQUESTS = 10_000;
/** Distinct filters a node subscribes upstream for all its apps together (the hub allows as many per connection). */
export const DEFAULT_MAX_FILTERS = 2_000;
/** Filters one local app may hold: one app cannot take every other app's share (it was a node-wide 1,000 before). */
export const DEFAULT_MAX_FILTERS_PER_APP = 500;
/** How long a write may wait for room in a full queue before it is refused (PUBLISH_TIMEOUT). */
export const DEFAULT_PUBLISH_WAIT_MS = 30_000;
/** Writes waiting for room, at most, in number and bytes; past either a write is refused at once (QUEUE_FULL). */
export const DEFAULT_MAX_WAITING_FRAMES = 50_000;
export const DEFAULT_MAX_WAITING_BYTES = 16 * 1024 * 1024;

export type HubUplinkOptions = {
  /** This node, as it says hello to the server (machine id and name). */
  node: { id: string; name: string };
  deliver: DeliverToApps;
  maxQueuedFrames?: number;
  maxQueuedBytes?: number;
  /** Writes on the wire unacknowledged at most (DEFAULT_SEND_WINDOW). */
  sendWindow?: number;
  publishWaitMs?: number;
  maxWaitingFrames?: number;
  maxWaitingBytes?: number;
  maxPendingRequests?: number;
  maxFilters?: number;
  maxFiltersPerApp?: number;
  maxTrackedOrigins?: number;
  /** Acknowledged writes kept for a resend, at most (acked-writes.ts DEFAULT_MAX_ACKED_*; 0 keeps none). */
  maxAckedFrames?: number;
  maxAckedBytes?: number;
  /** Errors from the server that concern no app (for the log). */
  onServerError?: (frame: ErrorFrame) => void;
};
