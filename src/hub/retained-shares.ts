/**
 * Fair, bounded retained state (docs/design.md §Data Hub): what the retained keys take, in
 * keys and bytes (key plus JSON value), for the whole hub, per machine and per
 * publisher (an app's origin), so one app or one machine cannot fill the hub
 * for the others. The main and the backup run the same rules on the same
 * defaults: what one accepted, the other holds too.
 *
 * A machine is who the hub connection said hello as (its node, proven by the
 * peer handshake); an app is its origin, as it names its writes. An app can
 * pick a new origin, so the machine share is the one that holds against a
 * faulty app; the app share keeps one well-behaved-but-busy app from taking
 * all of its machine's room.
 */
import { LimitReached } from "./hub-errors.ts";

/** Who wrote a retained key: the machine (hub member id) and the app (the write's origin). */
export type RetainedHolder = { readonly machine: string; readonly origin: string };

export type RetainedShareLimits = {
  readonly maxKeys: number;
  readonly maxBytes: number;
  readonly maxKeysPerMachine: number;
  readonly maxBytesPerMachine: number;
  readonly maxKeysPerApp: number;
  readonly maxBytesPerApp: number;
};

const MiB = 1024 * 1024;

/**
 * Retained state is status (tallies, routes, levels, names): a studio holds thousands of keys of
 * a few hundred bytes. 128 MiB bounds each server's memory and database (measured ≈ 1.4× in
 * RSS); a quarter of it per machine means at least four machines must fill their shares before
 * the hub is full, and one app (origin) gets at most 16 MiB and 10,000 keys.
 */
export const DEFAULT_RETAINED_SHARE_LIMITS: RetainedShareLimits = {
  maxKeys: 100_000,
  maxBytes: 128 * MiB,
  maxKeysPerMachine: 25_000,
  maxBytesPerMachine: 32 * MiB,
  maxKeysPerApp: 10_000,
  maxBytesPerApp: 16 * MiB,
};

/** Keys and bytes held. */
export type RetainedUse = { keys: number; bytes: number };

/** Held by one machine: its use and its apps' (origins'). */
export type MachineUse = RetainedUse & { readonly machine: string };

/** Where the holder of an entry written before holders were recorded (or by a peer that does not send them) is counted. */
export const UNKNOWN_HOLDER: RetainedHolder = Object.freeze({ machine: "", origin: "" });

/** An entry's size for the limits: its key and its value as JSON text, in UTF-8 bytes. */
export function retainedBytes(key: string, value: unknown): number {
  return Buffer.byteLength(key) + Buffer.byteLength(JSON.stringify(value));
}

export class RetainedShares {
  private readonly total: RetainedUse = { keys: 0, bytes: 0 };
  private readonly machines = new Map<string, RetainedUse>();
  private readonly apps = new Map<string, RetainedUse>();

  constructor(readonly limits: RetainedShareLimits = DEFAULT_RETAINED_SHARE_LIMITS) {}

  get keys(): number {
    return this.total.keys;
  }

  get bytes(): number {
    return this.total.bytes;
  }

  /** Use per machine, largest first (for /metrics and refusals). */
  byMachine(): MachineUse[] {
    return [...this.machines].map(([machine, use]) => ({ machine, ...use })).sort((a, b) => b.bytes - a.bytes || b.keys - a.keys);
  }

  add(holder: RetainedHolder, bytes: number): void {
    this.change(holder, 1, bytes);
  }

  remove(holder: RetainedHolder, bytes: number): void {
    this.change(holder, -1, -bytes);
  }

  /**
   * Why writing an entry of `bytes` for `holder` (replacing `before`, if the key is live) is refused,
   * or null. Only growth is refused: a write that takes no more than before, and a deletion, always pass.
   * `nameOf` turns a machine id into words for the message.
   */
  refusal(holder: RetainedHolder, bytes: number, before: { holder: RetainedHolder; bytes: number } | null, nameOf: (machine: string) => string): LimitReached | null {
    const l = this.limits;
    const sameMachine = before !== null && before.holder.machine === holder.machine;
    const sameApp = sameMachine && before.holder.origin === holder.origin;
    const who = nameOf(holder.machine || "(unknown)");
    return (
      over(this.apps.get(appKey(holder)), sameApp, before, bytes, l.maxKeysPerApp, l.maxBytesPerApp, `one app's share (the app writing as "${holder.origin}" on ${who})`) ??
      over(this.machines.get(holder.machine), sameMachine, before, bytes, l.maxKeysPerMachine, l.maxBytesPerMachine, `one machine's share (${who})`) ??
      over(this.total, before !== null, before, bytes, l.maxKeys, l.maxBytes, `the whole hub (largest holder: ${this.largestHolder(nameOf)})`)
    );
  }

  private largestHolder(nameOf: (machine: string) => string): string {
    const top = this.byMachine()[0];
    return top ? `${nameOf(top.machine || "(unknown)")} with ${top.keys} keys, ${sizeText(top.bytes)}` : "none";
  }

  private change(holder: RetainedHolder, keys: number, bytes: number): void {
    this.total.keys += keys;
    this.total.bytes += bytes;
    bump(this.machines, holder.machine, keys, bytes);
    bump(this.apps, appKey(holder), keys, bytes);
  }
}

function appKey(holder: RetainedHolder): string {
  return `${holder.machine}\n${holder.origin}`;
}

function bump(map: Map<string, RetainedUse>, key: string, keys: number, bytes: number): void {
  const use = map.get(key) ?? { keys: 0, bytes: 0 };
  use.keys += keys;
  use.bytes += bytes;
  if (use.keys <= 0) map.delete(key);
  else map.set(key, use);
}

/** The refusal when the write makes `use` grow past a bound; `replaces`: the key's old value counts in this same share. */
function over(
  use: RetainedUse | undefined,
  replaces: boolean,
  before: { bytes: number } | null,
  bytes: number,
  maxKeys: number,
  maxBytes: number,
  share: string,
): LimitReached | null {
  const keys = use?.keys ?? 0;
  const held = use?.bytes ?? 0;
  if (!replaces && keys + 1 > maxKeys) {
    return new LimitReached(`Retained state is full for ${share}: ${keys} keys of at most ${maxKeys}. Delete some (set them to null) first.`);
  }
  const grows = bytes - (replaces ? (before?.bytes ?? 0) : 0);
  if (grows > 0 && held + grows > maxBytes) {
    return new LimitReached(
      `Retained state is full for ${share}: ${sizeText(held)} of at most ${sizeText(maxBytes)}. Delete some keys (set them to null) or write smaller values.`,
    );
  }
  return null;
}

export function sizeText(bytes: number): string {
  return bytes >= MiB ? `${+(bytes / MiB).toFixed(1)} MiB` : `${+(bytes / 1024).toFixed(1)} KiB`;
}
