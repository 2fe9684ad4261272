/**
 * Alive tokens signed ahead of time on a worker thread (docs/design.md §Heartbeats and freshness).
 * tweetnacl's Ed25519 takes ≈ 7 ms a signature on this machine under load, and a server signs a
 * token every heartbeat period: at the fast preset's 50 ms that is ≈ 140 ms a second of the event
 * loop that also sends the heartbeats. A token names the signer's clock t, which is known in
 * advance, so the next few periods' tokens (t on a grid of the period) are signed on a worker and
 * kept here; the heartbeat takes the newest whose t has come. The wire and what a receiver believes
 * do not change: a token is only handed out at or after its t and within one period of it, so when
 * it is sent it proves the sender alive at t, as one signed at the moment did.
 *
 * Safe by construction: the worker signs only when a heartbeat asks (never more than PERIODS_AHEAD
 * periods past the heartbeat that asked), and only the event loop sends, so a stalled loop sends
 * nothing and finds everything it held stale when it wakes. What is signed ahead stays in this
 * process, for one claim (role, id, boot, epoch, period); a new claim drops it, and answers still
 * on the way for the old one are thrown away. When nothing is ready (at start, after a new claim,
 * a slow or failed worker) the caller signs on its own thread as before (core/signed-beats.ts).
 *
 * The worker's source is inline (tweetnacl's own text, embedded by the bundler, and a Blob URL),
 * so the compiled executable needs no second entry point (as store/chunk-hasher.ts).
 */
import naclSource from "tweetnacl/nacl-fast.min.js" with { type: "text" };
import type { Clock } from "../core/clock.ts";
import { aliveMessage, type AliveClaim, type AliveToken } from "../core/signed-claims.ts";
import { systemClock } from "./system-time.ts";

/** Periods signed past the current one: rides out a worker's hiccup of that long, and is all a stalled loop could find when it wakes (all stale by then). */
export const PERIODS_AHEAD = 3;
/** A request unanswered this long makes the worker a suspect; still unanswered half as long again, it is stopped and the next request starts a new one. */
export const STALL_MS = 1_000;
/** Failures in a row (errors or stalls, no answer between) after which signing stays on the caller's thread. */
export const MAX_FAILURES_IN_A_ROW = 3;
/** Requests held at most: a worker that answers nothing cannot make memory grow. */
const MAX_PENDING = 64;

const SIGN_WORKER_SOURCE = `
const nacl = (() => { const module = { exports: {} }; ${naclSource}
; return module.exports; })();
const encoder = new TextEncoder();
self.onmessage = (event) => {
  const { id, secretKey, message } = event.data;
  const signature = nacl.sign.detached(encoder.encode(message), secretKey);
  let text = "";
  for (const byte of signature) text += String.fromCharCode(byte);
  postMessage({ id, s: btoa(text) });
};
`;

/** Bun's Worker can be left out of what keeps the process alive (the DOM's type does not say so). */
type SignWorker = Worker & { unref(): void };
type Pending = { readonly answer: (signature: string | null) => void; readonly askedAt: number };

/** One worker thread that signs for every presigner in the process; answers null when it cannot. */
export class SigningThread {
  #worker: SignWorker | null = null;
  #url: string | null = null;
  #failuresInARow = 0;
  #nextId = 0;
  /** The oldest request, once it was found over the stall limit, and when. */
  #suspect: { readonly id: number; readonly since: number } | null = null;
  readonly #pending = new Map<number, Pending>();
  readonly #source: string;
  readonly #stallMs: number;
  readonly #clock: Clock;

  /** `source`: the worker's code, `stallMs`: how long an answer may take (tests give a broken or silent worker). */
  constructor(o: { source?: string; stallMs?: number; clock?: Clock } = {}) {
    this.#source = o.source ?? SIGN_WORKER_SOURCE;
    this.#stallMs = o.stallMs ?? STALL_MS;
    this.#clock = o.clock ?? systemClock;
  }

  /** Whether it still signs (false after MAX_FAILURES_IN_A_ROW failures with no answer between). */
  get usable(): boolean {
    return this.#failuresInARow < MAX_FAILURES_IN_A_ROW;
  }

  /** Signs `message` with `secretKey` on the worker; `answer` gets the base64 signature, or null when the worker failed. */
  sign(secretKey: Uint8Array, message: string, answer: (signature: string | null) => void): void {
    this.#checkStall();
    if (!this.usable || this.#pending.size >= MAX_PENDING) return answer(null);
    const worker = this.#worker ?? this.#start();
    const id = this.#nextId++;
    this.#pending.set(id, { answer, askedAt: this.#clock.now() });
    worker.postMessage({ id, secretKey, message });
  }

  /** Stops the worker (the next request starts another); requests it held are answered null. */
  close(): void {
    this.#worker?.terminate();
    this.#worker = null;
    const held = [...this.#pending.values()];
    this.#pending.clear();
    for (const { answer } of held) answer(null);
  }

  /**
   * A request older than the stall limit makes the worker a suspect; it is stopped only if that
   * request is still unanswered half a limit later. A loop that wakes from its own stall has
   * answers queued that it reads in its next turns, and must not blame the worker for them.
   */
  #checkStall(): void {
    const oldest = this.#pending.entries().next().value;
    const now = this.#clock.now();
    if (oldest === undefined || oldest[0] !== this.#suspect?.id) this.#suspect = null;
    if (oldest === undefined) return;
    if (this.#suspect === null) {
      if (now - oldest[1].askedAt >= this.#stallMs) this.#suspect = { id: oldest[0], since: now };
    } else if (now - this.#suspect.since >= this.#stallMs / 2) {
      this.#suspect = null;
      this.#fail();
    }
  }

  #fail(): void {
    this.#failuresInARow++;
    this.close();
  }

  #start(): SignWorker {
    // Kept for the thread's life: a worker started again after a failure loads it again.
    this.#url ??= URL.createObjectURL(new Blob([this.#source], { type: "application/javascript" }));
    const worker = new Worker(this.#url) as SignWorker;
    // Never what keeps a process alive: a token not signed ahead is signed by the caller.
    worker.unref();
    worker.onmessage = (event: MessageEvent<{ id: number; s: unknown }>) => {
      if (worker !== this.#worker) return;
      const pending = this.#pending.get(event.data.id);
      if (!pending) return;
      this.#pending.delete(event.data.id);
      this.#failuresInARow = 0;
      pending.answer(typeof event.data.s === "string" ? event.data.s : null);
    };
    worker.onerror = () => {
      if (worker === this.#worker) this.#fail();
    };
    this.#worker = worker;
    return worker;
  }
}

/** The process's signing thread. */
export const signingThread = new SigningThread();

/** What a presigner needs of a signing thread (tests answer by hand). */
export type Signing = Pick<SigningThread, "usable" | "sign">;

/** One machine key's tokens, signed ahead for one claim at a time. */
export class AlivePresigner {
  #claim: AliveClaim | null = null;
  /** Signatures ready, by t, for the current claim. */
  readonly #ready = new Map<number, string>();
  /** Grid times asked of the worker and not answered yet. */
  readonly #asked = new Set<number>();
  #generation = 0;
  /** Tokens handed out (signed off the caller's thread). */
  taken = 0;

  constructor(
    private readonly secretKey: Uint8Array,
    private readonly thread: Signing = signingThread,
  ) {}

  /**
   * The token for the newest grid time t with t ≤ now < t + period, if the worker has signed it
   * for this claim; asks for the current and the next PERIODS_AHEAD periods' tokens either way.
   * Null: none ready, the caller signs.
   */
  take(claim: AliveClaim, now: number): AliveToken | null {
    // No grid without a period (the runner's timings never have one of 0; the loop below would not end).
    if (!(claim.periodMs > 0)) return null;
    if (!sameClaim(this.#claim, claim)) this.#renew(claim);
    const period = claim.periodMs;
    let best: number | null = null;
    for (const t of this.#ready.keys()) {
      if (now - t >= period) this.#ready.delete(t);
      else if (t <= now && (best === null || t > best)) best = t;
    }
    for (const t of this.#asked) if (now - t >= period) this.#asked.delete(t);
    this.#askAhead(claim, now);
    if (best === null) return null;
    this.taken++;
    return { b: claim.boot, t: best, s: this.#ready.get(best)! };
  }

  /**
   * The token for the newest grid time t with t ≤ at < t + period, if already signed for this
   * claim; asks for nothing and hands nothing out. For heartbeats built ahead (docs/design.md
   * §Heartbeats and freshness, "Heartbeats that keep time"): `take` at the regular heartbeat has asked for their periods.
   */
  ready(claim: AliveClaim, at: number): AliveToken | null {
    if (!(claim.periodMs > 0) || !sameClaim(this.#claim, claim)) return null;
    const t = Math.floor(at / claim.periodMs) * claim.periodMs;
    const s = this.#ready.get(t);
    return s === undefined ? null : { b: claim.boot, t, s };
  }

  #renew(claim: AliveClaim): void {
    this.#claim = claim;
    this.#ready.clear();
    this.#asked.clear();
    this.#generation++;
  }

  #askAhead(claim: AliveClaim, now: number): void {
    if (!this.thread.usable) return;
    const period = claim.periodMs;
    const current = Math.floor(now / period) * period;
    for (let t = current; t <= current + PERIODS_AHEAD * period; t += period) {
      if (this.#ready.has(t) || this.#asked.has(t)) continue;
      this.#asked.add(t);
      const generation = this.#generation;
      this.thread.sign(this.secretKey, aliveMessage(claim.role, claim.id, claim.boot, t), (signature) => {
        // An answer for an old claim, or a time already passed, is dropped.
        if (generation !== this.#generation || !this.#asked.delete(t) || signature === null) return;
        this.#ready.set(t, signature);
      });
    }
  }
}

function sameClaim(a: AliveClaim | null, b: AliveClaim): boolean {
  return a !== null && a.role === b.role && a.id === b.id && a.boot === b.boot && a.epoch === b.epoch && a.periodMs === b.periodMs;
}
