/**
 * Heartbeats built ahead (docs/design.md §Heartbeats and freshness, "Heartbeats that keep time"). With each regular
 * heartbeat the runner builds the next few periods' ones, each with its own stamp and an alive
 * token signed ahead for its period, and hands them to a thread that sends each at its time
 * unless the next regular heartbeat replaced it first. A copy or a collection that holds the
 * event loop for a few periods then goes unnoticed by the peers; a loop that stays stalled has
 * nothing left to send after those few and goes silent, as a stopped process does.
 *
 * Why a peer may believe them: each says what the sender was when it was built, a period or
 * three before it arrives, and the runner drops them all the moment what they say changes
 * (phase, epoch, pairing: `beatKey`). Their stamps take the sequence numbers after the regular
 * heartbeat's and the next regular one takes higher ones, so a peer ignores one that arrives
 * after it as a replay (core/freshness.ts).
 */
import type { BeatBody } from "../core/failover/index.ts";
import type { SignedBeats } from "../core/signed-beats.ts";
import type { Heartbeat } from "../net/heartbeat.ts";
import type { AheadBeat } from "./runner-ports.ts";

export type AheadPlan = {
  /** When the regular heartbeat was sent. */
  readonly now: number;
  /** How many periods ahead (core/failure-detector.ts aheadPeriods). */
  readonly periods: number;
  readonly periodMs: number;
  /** How late past its period each goes out, so that a regular heartbeat on time replaces it first. */
  readonly graceMs: number;
  /** The sequence number of the first; the runner reserves `periods` of them. */
  readonly firstSeq: number;
  /** When the stamp the regular heartbeat echoes arrived. */
  readonly echoHeldSince: number | undefined;
  /** This machine's certificates and tokens; null when claims are taken at their word (tests). */
  readonly signed: SignedBeats | null;
};

/** The heartbeats to hand over after `regular`; fewer than `periods` when no token is signed for a period yet. */
export function beatsAhead(regular: Heartbeat, plan: AheadPlan): AheadBeat[] {
  const beats: AheadBeat[] = [];
  for (let k = 1; k <= plan.periods; k++) {
    const wanted = plan.now + k * plan.periodMs + plan.graceMs;
    const signed = plan.signed ? plan.signed.ahead(regular.epoch, regular.activeEpoch, wanted) : { fields: {}, at: wanted, until: Infinity };
    if (signed === null) break;
    const { at } = signed;
    const later = at - plan.now;
    beats.push({
      heartbeat: {
        ...regular,
        ...signed.fields,
        stamp: { boot: regular.stamp.boot, seq: plan.firstSeq + k - 1, sentAt: at },
        echoHeldMs: regular.echo !== null && plan.echoHeldSince !== undefined ? Math.max(0, at - plan.echoHeldSince) : null,
        // What the sender knows of each server when it goes out: not heard since the regular heartbeat (a server itself always says 0).
        msSinceHeardMain: regular.role === "main" || regular.msSinceHeardMain === null ? regular.msSinceHeardMain : regular.msSinceHeardMain + later,
        msSinceHeardBackup: regular.role === "backup" || regular.msSinceHeardBackup === null ? regular.msSinceHeardBackup : regular.msSinceHeardBackup + later,
      },
      at,
      notAfter: Math.min(at + plan.periodMs / 2, signed.until),
    });
  }
  return beats;
}

/** What heartbeats built ahead say that may not go out once it changed. */
export function beatKey(beat: BeatBody): string {
  return `${beat.role} ${beat.state} ${beat.epoch} ${beat.activeEpoch} ${beat.pairedWith} ${beat.condition}`;
}
