/**
 * The one runner around the pure failover core, in production and in the
 * simulator (test/sim runs this very class over an in-memory network): it
 * feeds the core its events and carries out its effects in order
 * (persistEpoch and persistPairing always before anything that announces
 * them). Clock, timers, the heartbeat transport and the stores are injected.
 *
 * It also refuses heartbeats that speak for a server without its machine
 * key (core/heartbeat-trust.ts), judges every heartbeat's freshness
 * (core/freshness.ts) before the core sees it, answers heartbeats that are authentic but not yet proven
 * recent, and tells the machine where its local apps' Data Hub uplink goes
 * (core/routing.ts) whenever that changes.
 */
import type { Clock, Timers } from "../core/clock.ts";
import { admit, NO_MEMO, type SenderMemo, type Stamp, type Verdict } from "../core/freshness.ts";
import { heartbeatCounts, NO_KNOWN_SERVERS, serversKnownTo, type KnownServers } from "../core/heartbeat-trust.ts";
import { SignedBeats } from "../core/signed-beats.ts";
import type { ClaimSigner } from "../core/signed-claims.ts";
import {
  beatOf,
  fromFormerPartner,
  sameLanes,
  startBackup,
  startClient,
  startMain,
  statusChip,
  tickPeriodMs,
  transition,
  type BeatBody,
  type Effect,
  type Failback,
  type Lanes,
  type NodeEvent,
  type NodeState,
  type Peer,
  type Role,
  type ServerRole,
  type StatusChip,
} from "../core/failover/index.ts";
import { formatHostPort } from "../core/config.ts";
import { fingerprint } from "../core/keys.ts";
import { aheadPeriods, type Timings } from "../core/failure-detector.ts";
import { sameTarget, uplinkTarget, type UplinkTarget } from "../core/routing.ts";
import { beatBody, type Heartbeat } from "../net/heartbeat.ts";
import { beatKey, beatsAhead } from "./beats-ahead.ts";
import { AnswerBudget } from "./answer-budget.ts";
import { ImpostorTally } from "./impostor-tally.ts";

import type { Endpoint, EpochStore, FailoverHooks, FormerPartnerStore, HeartbeatTransport, PairingStore, PeerDelay, PeerRecord, RunnerLog, RunnerObserver } from "./runner-ports.ts";

export type { Endpoint, EpochStore, FailoverHooks, FormerPartnerStore, HeartbeatTransport, PairingStore, PeerDelay, RunnerLog, RunnerObserver } from "./runner-ports.ts";

export type FailoverRunnerOptions = {
  role: Role;
  id: string;
  name: string;
  /** Random per process start (core/freshness.ts). */
  boot: string;
  transport: HeartbeatTransport;
  /** Server addresses this machine knows (its own role's entry is ignored). */
  servers: { main: Endpoint | null; backup: Endpoint | null };
  timings: Timings;
  failback: Failback;
  /** Servers persist their epoch and pairing; clients keep neither. */
  epochStore: EpochStore | null;
  pairingStore: PairingStore | null;
  /** The main's removed backups it still answers, kept across restarts (others: none). */
  formerPartnerStore?: FormerPartnerStore | null;
  hooks: FailoverHooks;
  clock: Clock;
  /** Only `every` is used: the runner steps on a period. */
  timers: Pick<Timers, "every">;
  log: RunnerLog;
  /** Clients: the machine ids of the servers, as the peer handshake with their addresses proved them (servers know theirs from the pairing). */
  knownServers?: () => KnownServers;
  /** Clients: a heartbeat came from a server's address that its proven identity does not back yet (a main back after an outage): prove it now. */
  unprovenServer?: () => void;
  /** Whether this machine holds machine `id`'s key (then only heartbeats sealed by it speak in its name). */
  keyKnown?: (id: string) => boolean;
  /** This server's lane positions now (read every tick). */
  lanes?: () => Lanes | null;
  /** Local apps connected to this machine's node, told to every peer for its Routing panel. */
  localApps?: () => number;
  /** The network key in force now: its fingerprint rides in every heartbeat, for the peers' Machines panels. */
  networkKey?: () => Uint8Array | null;
  /** Signs and checks epoch certificates and alive tokens (core/signed-claims.ts); without it (tests of other rules) claims are taken at their word. */
  signer?: ClaimSigner;
  observer?: RunnerObserver;
};

/** Senders remembered at most; the oldest is forgotten first. A network has far fewer machines. */
export const MAX_TRACKED_SENDERS = 4096;
export { MAX_CHALLENGES_PER_PERIOD } from "./answer-budget.ts";
export { IMPOSTOR_WARN_AFTER } from "./impostor-tally.ts";

export class FailoverRunner {
  private state: NodeState;
  private readonly options: FailoverRunnerOptions;
  private seq = 0;
  private stopTimer: (() => void) | null = null;
  private readonly peers = new Map<string, PeerRecord>();
  private readonly memos = new Map<string, SenderMemo>();
  /** When the stamp we echo to each peer arrived (its round trip excludes the time we hold it). */
  private readonly echoReceivedAt = new Map<string, number>();
  private readonly serverIds: Partial<Record<ServerRole, string>> = {};
  private readonly answers: AnswerBudget;
  private catchUpToken = 0;
  private lastCatchUpError = "";
  private lastUplink: UplinkTarget | null = null;
  private lastLanes: Lanes | null = null;
  private servers: { main: Endpoint | null; backup: Endpoint | null };
  private readonly impostors = new ImpostorTally();
  /** Certificates, alive tokens and the judgement of what heartbeats claim; null without a signer. */
  readonly signed: SignedBeats | null;
  /** What the heartbeats handed over ahead say (beats-ahead.ts beatKey); null when none are. */
  private aheadKey: string | null = null;

  constructor(options: FailoverRunnerOptions) {
    this.options = options;
    this.servers = { ...options.servers };
    const now = options.clock.now();
    const epoch = options.epochStore?.read() ?? 0;
    const pairing = options.pairingStore?.read() ?? null;
    const { timings } = options;
    this.answers = new AnswerBudget(timings.heartbeatMs, MAX_TRACKED_SENDERS);
    this.signed = options.signer ? new SignedBeats({ role: options.role, id: options.id, boot: options.boot, signer: options.signer, heartbeatMs: timings.heartbeatMs }) : null;
    this.signed?.holds(epoch);
    const step =
      options.role === "main"
        ? startMain({ timings, failback: options.failback, selfId: options.id, pairing, epoch, formerPartners: options.formerPartnerStore?.read() ?? [] }, now)
        : options.role === "backup"
          ? startBackup({ timings, selfId: options.id, pairing, epoch }, now)
          : startClient({ timings, knows: { main: this.servers.main !== null, backup: this.servers.backup !== null } }, now);
    this.state = step.state;
    this.run(step.effects);
    this.afterStep(now);
  }

  /** Starts ticking. Tests and the simulator may call `tick()` themselves instead. */
  start(): void {
    this.stopTimer ??= this.options.timers.every(tickPeriodMs(this.options.timings.heartbeatMs), () => this.tick());
  }

  stop(): void {
    this.stopTimer?.();
    this.stopTimer = null;
    this.dropAhead();
  }

  tick(): void {
    const lanes = this.options.lanes?.() ?? null;
    if (lanes !== null && !sameLanes(lanes, this.lastLanes)) {
      this.lastLanes = lanes;
      this.feed({ type: "lanes", lanes });
    }
    this.feed({ type: "tick" });
  }

  feed(event: NodeEvent): void {
    const now = this.options.clock.now();
    const step = transition(this.state as never, event as never, now) as { state: NodeState; effects: readonly Effect[] };
    this.state = step.state;
    // Before this step's heartbeats go out: none handed over ahead may say what is no longer so.
    if (this.aheadKey !== null && beatKey(beatOf(this.state, now)) !== this.aheadKey) this.dropAhead();
    this.run(step.effects);
    this.afterStep(now);
  }

  /** The core's state, read-only (status pages, routing, the simulator's checker). */
  get current(): NodeState {
    return this.state;
  }

  /**
   * A heartbeat arrived that opened, sealed under machine `sealedBy`'s key
   * (null: under the network key, so any key holder may have sent it); not
   * yet judged.
   */
  onHeartbeat(hb: Heartbeat, from: Endpoint, sealedBy: string | null): void {
    const now = this.options.clock.now();
    if (hb.id === this.options.id) return;
    if (fromFormerPartner(hb, sealedBy, this.formerPartners())) return this.answerFormerPartner(hb, from, now);
    if (!heartbeatCounts(hb, sealedBy, this.knownServers(), this.options.keyKnown)) return this.refuseImpostor(hb, from, sealedBy);
    const verdict = this.admit(hb, now);
    if (hb.role !== "client" && this.isConfiguredServer(hb.role, from)) this.serverIds[hb.role] ??= hb.id;
    if (verdict === "replay") return;
    if (verdict === "unverified") return this.answer(hb, from, now, true);
    // The sender could not count ours: answer now, so freshness costs one round trip, not a heartbeat period.
    if (hb.challenge) this.answer(hb, from, now, false);
    const heard = this.peers.get(hb.id);
    // The echo carries our own send time and how long the peer held it: the round trip itself,
    // not the wait for its next heartbeat, and no synchronised clocks needed.
    const delayMs = hb.echo ? Math.max(0, now - hb.echo.sentAt - (hb.echoHeldMs ?? 0)) : (heard?.delayMs ?? null);
    this.peers.set(hb.id, { address: from, name: hb.name, role: hb.role, state: hb.state, heardAt: now, delayMs, localApps: hb.localApps ?? null, pairedWith: hb.pairedWith, keyFp: hb.keyFp ?? null });
    if (hb.role !== "client") this.serverIds[hb.role] = hb.id;
    const judged = this.signed?.incoming(hb.id, hb, this.knownServers(), sealedBy, now);
    if (judged?.log) this.options.log.warn(judged.log, { from: formatHostPort(from) });
    const beat = judged ? { ...beatBody(hb), epoch: judged.epoch, activeEpoch: judged.activeEpoch } : beatBody(hb);
    this.feed({ type: "heartbeat", id: hb.id, beat, ...(judged ? { witnessMsAgo: judged.witnessMsAgo } : {}) });
  }

  /** Judges a heartbeat's freshness (core/freshness.ts), remembering what to echo to its sender. */
  private admit(hb: Heartbeat, now: number): Verdict {
    const memo = this.memos.get(hb.id) ?? NO_MEMO;
    const { memo: next, verdict } = admit(memo, hb, this.options.boot, now, this.options.timings.failoverTimeoutMs);
    this.remember(hb.id, next);
    if (next.echo !== memo.echo) this.echoReceivedAt.set(hb.id, now);
    this.options.observer?.heartbeat?.(hb, verdict);
    return verdict;
  }

  private formerPartners(): readonly string[] {
    return this.state.role === "main" ? this.state.formerPartners : [];
  }

  /**
   * A backup this main removed (core/failover/former-partners.ts): its heartbeat only tells the core whether it let go;
   * until it has, it is answered where it came from, and the answer, naming another backup or none, makes it let go.
   */
  private answerFormerPartner(hb: Heartbeat, from: Endpoint, now: number): void {
    const verdict = this.admit(hb, now);
    if (verdict === "replay") return;
    if (verdict === "fresh") this.feed({ type: "formerPartnerHeard", id: hb.id, pairedWith: hb.pairedWith });
    if (this.formerPartners().includes(hb.id)) this.answer(hb, from, now, verdict === "unverified");
  }

  /** The machines this one knows as the servers (core/heartbeat-trust.ts). */
  knownServers(): KnownServers {
    const s = this.state;
    if (s.role === "client") return this.options.knownServers?.() ?? NO_KNOWN_SERVERS;
    return serversKnownTo({ role: s.role, id: this.options.id }, s.peerId);
  }

  /** Heartbeats refused for speaking as a server without its machine key. */
  get untrustedHeartbeats(): number {
    return this.impostors.refused;
  }

  private refuseImpostor(hb: Heartbeat, from: Endpoint, sealedBy: string | null): void {
    if (hb.role !== "client" && this.isConfiguredServer(hb.role, from)) this.options.unprovenServer?.();
    this.options.observer?.heartbeat?.(hb, "untrusted");
    const warning = this.impostors.refuse(hb, this.knownServers());
    if (warning !== null) this.options.log.warn(warning, { from: formatHostPort(from), sealedBy });
  }

  /** A socket to that server broke: an immediate signal, no need to wait for heartbeat silence. */
  linkBroken(peer: ServerRole): void {
    this.feed({ type: "linkBroken", peer });
  }

  /**
   * The server addresses as saved on the setup pages. Saving them unchanged
   * does nothing at all; a client learns which servers it knows; servers just
   * address their peer there (pairing is its own exchange).
   */
  setServers(servers: { main: Endpoint | null; backup: Endpoint | null }): void {
    const same = (a: Endpoint | null, b: Endpoint | null) => (a === null ? b === null : b !== null && a.host === b.host && a.port === b.port);
    if (same(servers.main, this.servers.main) && same(servers.backup, this.servers.backup)) return;
    this.servers = { ...servers };
    if (this.state.role === "client") this.feed({ type: "setServers", main: servers.main !== null, backup: servers.backup !== null });
  }

  serverAddresses(): { main: Endpoint | null; backup: Endpoint | null } {
    return { ...this.servers };
  }

  /** Where heartbeats for that server go now. */
  serverAddress(role: ServerRole): Endpoint | null {
    return this.servers[role];
  }

  /** For /api/status: the chip, the state, the epoch and the delay to each peer. */
  status(): { chip: StatusChip; state: string; epoch: number; activeEpoch: number | null; peers: PeerDelay[] } {
    const now = this.options.clock.now();
    const s = this.state;
    const beat = beatOf(s, now);
    return {
      chip: statusChip(s, now),
      state: beat.state,
      epoch: s.epoch,
      activeEpoch: beat.activeEpoch,
      peers: [...this.peers.entries()].map(([id, p]) => ({
        id,
        name: p.name,
        role: p.role,
        state: p.state,
        address: formatHostPort(p.address),
        delayMs: p.delayMs,
        lastHeardMsAgo: now - p.heardAt,
        localApps: p.localApps,
        unbackedClaims: this.signed?.claimants.counts().get(id) ?? 0,
        pairedWith: p.pairedWith,
        keyFingerprint: p.keyFp,
      })),
    };
  }

  /** Where the local apps' uplink goes now (core/routing.ts). */
  get uplink(): UplinkTarget {
    return this.lastUplink ?? { server: null, epoch: null };
  }

  private afterStep(now: number): void {
    const target = uplinkTarget(this.state, now);
    if (sameTarget(this.lastUplink, target)) return;
    this.lastUplink = target;
    this.options.hooks.uplink(target);
  }

  private run(effects: readonly Effect[]): void {
    for (const effect of effects) {
      this.options.observer?.effect?.(effect);
      switch (effect.type) {
        case "persistEpoch":
          this.options.epochStore?.write(effect.epoch);
          this.signed?.holds(effect.epoch);
          break;
        case "persistPairing":
          this.options.pairingStore?.write(effect.pairing);
          break;
        case "persistFormerPartners":
          this.options.formerPartnerStore?.write(effect.ids);
          break;
        case "send":
          this.send(effect.to, effect.beat);
          break;
        case "startServing":
          this.catchUpToken++; // a copy still running is abandoned
          this.options.hooks.startServing(effect.epoch);
          break;
        case "stopServing":
          this.options.hooks.stopServing(effect.epoch);
          break;
        case "startCatchUp": {
          const token = ++this.catchUpToken;
          let answered = false;
          this.options.hooks.catchUp(effect.epoch, (ok, why) => {
            if (answered || token !== this.catchUpToken) return; // late or repeated: the core has moved on
            answered = true;
            // The core retries every heartbeat while the backup cannot be copied from: say so once per reason.
            const message = why ?? "unknown";
            if (!ok && message !== this.lastCatchUpError) this.options.log.warn("catch-up failed", { message });
            this.lastCatchUpError = ok ? "" : message;
            this.feed({ type: ok ? "catchUpDone" : "catchUpFailed" });
          });
          break;
        }
        case "follow":
          // Clients' following is read from the state after each step (afterStep), like every role's.
          break;
        case "log":
          this.options.log[effect.level](effect.message);
          break;
        case "pairAgain":
          this.options.hooks.pairAgain?.(effect.peerId);
          break;
      }
    }
  }

  /**
   * Answers a heartbeat at once, within the budget (answer-budget.ts): one that does not count yet
   * (as a challenge, so its sender can echo something fresh and answer back), or a challenge.
   */
  private answer(hb: Heartbeat, from: Endpoint, now: number, challenge: boolean): void {
    if (this.answers.take(challenge ? hb.id : `${hb.id}:answer`, now)) this.transmit(beatOf(this.state, now), from, hb.id, challenge);
  }

  private send(to: Peer, beat: BeatBody): void {
    if (to.role === "client") {
      const peer = this.peers.get(to.id);
      if (peer) this.transmit(beat, peer.address, to.id, false, true);
      return;
    }
    const address = this.servers[to.role];
    if (address) this.transmit(beat, address, this.knownServers()[to.role] ?? this.serverIds[to.role] ?? null, false, true);
  }

  /** Sends one heartbeat now and, for a regular one (`ahead`), hands over the next periods' (beats-ahead.ts). */
  private transmit(beat: BeatBody, to: Endpoint, peerId: string | null, challenge: boolean, ahead = false): void {
    const now = this.options.clock.now();
    const stamp: Stamp = { boot: this.options.boot, seq: ++this.seq, sentAt: now };
    const echo = peerId === null ? null : (this.memos.get(peerId)?.echo ?? null);
    const heldSince = peerId === null ? undefined : this.echoReceivedAt.get(peerId);
    const hb: Heartbeat = {
      ...beat,
      id: this.options.id,
      name: this.options.name,
      stamp,
      echo,
      echoHeldMs: echo !== null && heldSince !== undefined ? Math.max(0, now - heldSince) : null,
      // Not heard from that peer for two periods (a cut just healed): ask it to answer at once, not a period later.
      challenge: challenge || (peerId !== null && !(now - (this.peers.get(peerId)?.heardAt ?? -Infinity) <= 2 * this.options.timings.heartbeatMs)),
      showFileRevision: beat.lanes?.logSeq ?? 0,
      localApps: this.options.localApps?.() ?? null,
      keyFp: this.keyFingerprint(),
      ...this.signed?.outgoing(beat.epoch, beat.activeEpoch, now),
    };
    const { transport, timings } = this.options;
    transport.send(hb, to, peerId);
    const periods = aheadPeriods(timings);
    if (!ahead || transport.sendAhead === undefined || periods === 0) return;
    const beats = beatsAhead(hb, {
      now,
      periods,
      periodMs: timings.heartbeatMs,
      // A regular heartbeat is up to a tick late on a loop that keeps up: it replaces these first.
      graceMs: tickPeriodMs(timings.heartbeatMs),
      firstSeq: this.seq + 1,
      echoHeldSince: heldSince,
      signed: this.signed,
    });
    this.seq += periods;
    this.aheadKey = beatKey(beat);
    transport.sendAhead(beats, to, peerId);
  }

  private dropAhead(): void {
    this.aheadKey = null;
    this.options.transport.dropAhead?.();
  }

  private fpOf: { key: Uint8Array | null; fp: string | null } = { key: null, fp: null }; // hashed when the key in force changes, not per heartbeat
  private keyFingerprint(): string | null {
    const key = this.options.networkKey?.() ?? null;
    if (key !== this.fpOf.key) this.fpOf = { key, fp: key === null ? null : fingerprint(key) };
    return this.fpOf.fp;
  }

  /** A heartbeat from the address configured for that server role (so its id can be echoed to that address). */
  private isConfiguredServer(role: ServerRole, from: Endpoint): boolean {
    const at = this.servers[role];
    return at !== null && at.host === from.host && at.port === from.port;
  }

  private remember(id: string, memo: SenderMemo): void {
    if (!this.memos.has(id) && this.memos.size >= MAX_TRACKED_SENDERS) {
      const oldest = this.memos.keys().next().value!;
      this.memos.delete(oldest);
      this.echoReceivedAt.delete(oldest);
    }
    this.memos.set(id, memo);
  }
}
