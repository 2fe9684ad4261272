/**
 * The challenge a listener hands out on `GET /identity`, which the dialer's
 * proof in its WebSocket upgrade is bound to (handshake.ts), and the memory
 * that makes each proof open one socket at most. docs/design.md §Security.
 *
 * The challenge is random per listener and per window of CHALLENGE_WINDOW_MS
 * (the current and the previous one are taken): a proof sniffed on its way to
 * the backup, or to another client, names another machine id and opens nothing
 * at the main; a proof stops working within two windows; and a restart makes
 * every earlier proof useless (the listener remembers nothing across it, and
 * needs to). Within its window each dialer nonce is taken once.
 */
import { z } from "zod";
import type { Clock } from "../core/clock.ts";
import { systemRandom, type RandomBytes } from "./crypto.ts";

export const CHALLENGE_BYTES = 16;
/** How long one challenge is current; a proof made from it is taken for up to twice that. */
export const CHALLENGE_WINDOW_MS = 30_000;
/** Proofs remembered per window: past this, new ones wait for the next window (refused as busy, never replayable). */
export const MAX_PROOFS_PER_WINDOW = 65_536;

/** What a listener says on GET /identity (`challenge`) so a dialer can make its proof for it. */
export const upgradeChallengeSchema = z.object({ id: z.string().min(1).max(128), nonce: z.string().regex(/^[0-9a-f]{32}$/) });
export type UpgradeChallenge = z.infer<typeof upgradeChallengeSchema>;

/** Whether a proof made from challenge `nonce` may open a socket now. */
export type ChallengeVerdict = "ok" | "stale" | "replayed" | "busy";

type Window = { index: number; nonce: string; seen: Set<string> };

/** The listener's side: hands out challenges and takes each dialer nonce once. */
export class UpgradeChallenges {
  private current: Window;
  private previous: Window | null = null;

  constructor(
    readonly machineId: string,
    private readonly clock: Clock,
    private readonly random: RandomBytes = systemRandom,
  ) {
    this.current = this.newWindow(this.windowAt(clock.now()));
  }

  /** For GET /identity: what a dialer makes its proof from now. */
  challenge(): UpgradeChallenge {
    return { id: this.machineId, nonce: this.turn().nonce };
  }

  /**
   * Call only for a proof whose MAC checked (so a stranger fills nothing): takes `dialerNonce` once within the
   * challenge's window. A replay is refused before `admit` (a sniffer's replays spend no one's tokens); a nonce
   * is remembered only once `admit` said yes, so a key holder past its share cannot fill the window for everyone.
   */
  take(challengeNonce: string, dialerNonce: string, admit: () => boolean = () => true): ChallengeVerdict {
    this.turn();
    const window = [this.current, this.previous].find((w) => w?.nonce === challengeNonce);
    // A challenge this run never gave (an earlier run's) or one too old: the dialer asks again.
    if (!window) return "stale";
    if (window.seen.has(dialerNonce)) return "replayed";
    if (window.seen.size >= MAX_PROOFS_PER_WINDOW || !admit()) return "busy";
    window.seen.add(dialerNonce);
    return "ok";
  }

  private turn(): Window {
    const index = this.windowAt(this.clock.now());
    if (index !== this.current.index) {
      this.previous = index === this.current.index + 1 ? this.current : null;
      this.current = this.newWindow(index);
    }
    return this.current;
  }

  private windowAt(now: number): number {
    return Math.floor(now / CHALLENGE_WINDOW_MS);
  }

  private newWindow(index: number): Window {
    return { index, nonce: Buffer.from(this.random(CHALLENGE_BYTES)).toString("hex"), seen: new Set() };
  }
}
