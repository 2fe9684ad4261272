/**
 * Throughput of the wire security layer, single thread. Not a test: run it by
 * hand (`bun test/bench/crypto.ts`) and compare with FACTS.md.
 */
import { createCipheriv } from "node:crypto";
import nacl from "tweetnacl";
import { deriveBroadcastKey, seededRandom } from "../../src/net/crypto.ts";
import { sealBroadcast } from "../../src/net/broadcast.ts";
import { HandshakeInitiator, answerUpgrade, type HandshakeStep } from "../../src/net/handshake.ts";
import { UpgradeChallenges } from "../../src/net/upgrade-challenge.ts";
import { systemClock } from "../../src/net/system-time.ts";
import { HeartbeatCodec, type Heartbeat } from "../../src/net/heartbeat.ts";
import { HeartbeatKeys } from "../../src/net/heartbeat-keys.ts";
import { fingerprint } from "../../src/core/keys.ts";
import type { SecureChannel } from "../../src/net/channel.ts";
import { SignedBeats } from "../../src/core/signed-beats.ts";
import type { ClaimSigner } from "../../src/core/signed-claims.ts";
import { FAST_TIMINGS } from "../../src/core/failure-detector.ts";
import { BUSY, loadAverage, startBusy } from "./busy.ts";

const random = seededRandom("bench");
const networkKey = random(32);
const MIN_RUN_MS = 500;

/** Runs `work` in growing batches until MIN_RUN_MS has passed; returns operations per second. */
function rate(work: () => void): number {
  for (let i = 0; i < 20; i++) work(); // warm up the JIT
  let operations = 0;
  const start = performance.now();
  let batch = 1;
  while (performance.now() - start < MIN_RUN_MS) {
    for (let i = 0; i < batch; i++) work();
    operations += batch;
    batch = Math.min(batch * 2, 1024);
  }
  return operations / ((performance.now() - start) / 1000);
}

function established(step: HandshakeStep): SecureChannel {
  if (step.status !== "established") throw new Error(`handshake ${step.status}`);
  return step.channel;
}

function handshake(): [SecureChannel, SecureChannel] {
  const challenges = new UpgradeChallenges(fingerprint(machineB.publicKey), systemClock, random);
  const initiator = new HandshakeInitiator({ networkKey, machine: machineA, peerAddress: "b", random, path: "/hub", challenge: challenges.challenge() });
  const answer = answerUpgrade({ networkKey, machine: machineB, peerAddress: "a", random, challenges, headers: new Headers(initiator.headers), path: "/hub" });
  if (!answer.ok) throw new Error(answer.error.message);
  return [established(initiator.receive(answer.reply)), answer.channel];
}

const machineA = nacl.sign.keyPair.fromSeed(random(32));
const clock0 = () => ({ now: () => performance.now() });
const machineB = nacl.sign.keyPair.fromSeed(random(32));
const rows: [string, string][] = [];
const perSecond = (n: number) => `${Math.round(n).toLocaleString("en")} /s`;
const mbPerSecond = (n: number, bytes: number) => `${Math.round((n * bytes) / 1e6).toLocaleString("en")} MB/s`;

const small = random(200);
const chunk = random(1024 * 1024);

{
  const [a, b] = handshake();
  rows.push(["channel seal+open, 200 B (secretbox)", perSecond(rate(() => b.open(a.seal(small))))]);
  rows.push(["channel seal, 200 B", perSecond(rate(() => a.seal(small)))]);
}
{
  const key = deriveBroadcastKey(networkKey, 1);
  rows.push(["broadcast seal, 200 B (once per N subscribers)", perSecond(rate(() => sealBroadcast(key, small, nacl.randomBytes)))]);
}
{
  const codec = new HeartbeatCodec(networkKey);
  const heartbeat: Heartbeat = {
    id: "0123456789abcdef",
    role: "client",
    state: "follow-main",
    epoch: 3,
    activeEpoch: 3,
    msSinceHeardBackup: 40,
    condition: null,
    syncProgress: null,
    stamp: { boot: "0011223344556677", seq: 1, sentAt: 1000 },
    echo: { boot: "8899aabbccddeeff", seq: 1, sentAt: 900 },
    echoHeldMs: null,
    challenge: false,
    showFileRevision: 12,
    msSinceHeardMain: 40,
    pairedWith: null,
    lanes: null,
    hubCopied: null,
    name: "Render 2",
  };
  const datagram = codec.encode(heartbeat);
  rows.push([`heartbeat encode (${datagram.length} B datagram)`, perSecond(rate(() => codec.encode(heartbeat)))]);
  rows.push(["heartbeat decode + validate", perSecond(rate(() => codec.decode(datagram, "bench")))]);
  // What binding a heartbeat to its sender's machine key costs: a pair key (heartbeat-keys.ts), or a signature per datagram.
  const clock = { now: () => performance.now() };
  const senderKeys = new HeartbeatKeys(machineA, clock);
  senderKeys.pin(machineB.publicKey);
  const sealedFor = new HeartbeatCodec(networkKey, random, senderKeys);
  const receiver = new HeartbeatCodec(networkKey, random, new HeartbeatKeys(machineB, clock));
  const fromA = { ...heartbeat, id: fingerprint(machineA.publicKey) };
  const peerDatagram = sealedFor.encode(fromA, fingerprint(machineB.publicKey));
  rows.push([`machine-sealed heartbeat encode (${peerDatagram.length} B datagram)`, perSecond(rate(() => sealedFor.encode(fromA, fingerprint(machineB.publicKey))))]);
  rows.push(["machine-sealed heartbeat open + validate", perSecond(rate(() => receiver.open(peerDatagram, "bench")))]);
  rows.push(["pair key derivation, once per peer (X25519)", perSecond(rate(() => new HeartbeatKeys(machineA, clock).pin(machineB.publicKey)))]);
  const signature = nacl.sign.detached(datagram, machineA.secretKey);
  rows.push(["Ed25519 sign of a heartbeat (per datagram, not used)", perSecond(rate(() => nacl.sign.detached(datagram, machineA.secretKey)))]);
  rows.push(["Ed25519 verify of a heartbeat (per datagram, not used)", perSecond(rate(() => nacl.sign.detached.verify(datagram, signature, machineA.publicKey)))]);
}
{
  // Fresh channels per measurement: a seal-only run moves the sender's counter ahead of the receiver's.
  const sealRate = rate(((a) => () => a.bulk.seal(chunk))(handshake()[0]));
  const [a, b] = handshake();
  const roundTrip = rate(() => b.bulk.open(a.bulk.seal(chunk)));
  rows.push(["bulk lane seal, 1 MiB (AES-256-GCM)", mbPerSecond(sealRate, chunk.length)]);
  rows.push(["bulk lane seal+open, 1 MiB", mbPerSecond(roundTrip, chunk.length)]);
  const secretboxRate = rate(() => b.open(a.seal(chunk)));
  rows.push(["channel seal+open, 1 MiB (secretbox, for comparison)", mbPerSecond(secretboxRate, chunk.length)]);
}
{
  // Raw primitives, to see what the envelope, counters and copies cost on top.
  const key = random(32);
  const nonce = random(24);
  rows.push(["raw nacl.secretbox, 200 B", perSecond(rate(() => nacl.secretbox(small, nonce, key)))]);
  const iv = random(12);
  const gcm = () => {
    const cipher = createCipheriv("aes-256-gcm", key, iv);
    cipher.update(chunk);
    cipher.final();
    cipher.getAuthTag();
  };
  rows.push(["raw aes-256-gcm seal, 1 MiB", mbPerSecond(rate(gcm), chunk.length)]);
}
rows.push(["full handshake, both sides (2 sign + 2 verify)", perSecond(rate(() => handshake()))]);
rows.push(["deriveBroadcastKey", perSecond(rate(() => deriveBroadcastKey(networkKey, 9)))]);

{
  // What alive tokens cost the event loop at the fast preset: a main's heartbeat each period, as the runner sends them.
  const periodMs = FAST_TIMINGS.heartbeatMs;
  const tokenRun = async (name: string, keys: HeartbeatKeys, signedAhead: boolean) => {
    let onLoop = 0;
    const signer: ClaimSigner = {
      sign: (message) => (onLoop++, keys.sign(message)),
      verify: (id, message, signature) => keys.verify(id, message, signature),
      ...(signedAhead ? { signedAhead: (claim, now) => keys.signedAhead(claim, now) } : {}),
    };
    const beats = new SignedBeats({ role: "main", id: keys.id, boot: "0011223344556677", signer, heartbeatMs: periodMs });
    const measure = async (ms: number) => {
      let loopMs = 0;
      onLoop = 0;
      const start = performance.now();
      while (performance.now() - start < ms) {
        const before = performance.now();
        beats.outgoing(1, 1, before);
        loopMs += performance.now() - before;
        await Bun.sleep(periodMs);
      }
      const seconds = (performance.now() - start) / 1000;
      return { loopMsPerSecond: loopMs / seconds, signedPerSecond: onLoop / seconds };
    };
    await measure(1_000); // warm-up: the JIT, and the worker's start
    const { loopMsPerSecond, signedPerSecond } = await measure(5_000);
    rows.push([`alive tokens at ${periodMs} ms, ${name}: event loop`, `${loopMsPerSecond.toFixed(1)} ms/s`]);
    rows.push([`alive tokens at ${periodMs} ms, ${name}: signed on the loop`, `${signedPerSecond.toFixed(1)} /s`]);
  };
  const stopBusy = startBusy(BUSY);
  const load = await loadAverage();
  await tokenRun("signed on the loop (before)", new HeartbeatKeys(machineA, clock0()), false);
  await tokenRun("signed ahead (after)", new HeartbeatKeys(machineA, clock0()), true);
  await stopBusy();
  rows.push([`(alive token rows: BUSY=${BUSY}, load average ${load})`, ""]);
}

const width = Math.max(...rows.map(([name]) => name.length));
for (const [name, value] of rows) console.log(`${name.padEnd(width)}  ${value.padStart(14)}`);
