/**
 * `understudy pub|sub|set|get`: a local app on the command line, talking to
 * its own node's `/app` path (the node carries it to the active server, so a
 * failover never interrupts it). For scripts, tests and benchmarks.
 */
import nacl from "tweetnacl";
import { formatHostPort } from "../core/config.ts";
import { AppError } from "../core/errors.ts";
import { encodeFrame, parseFromHubFrame, type FromHubFrame, type ToHubFrame } from "../hub/frames.ts";
import { broadcastEpoch, openBroadcast } from "../net/broadcast.ts";
import { deriveBroadcastKey } from "../net/crypto.ts";
import { FrameBatcher, splitFrames } from "../net/frame-batch.ts";
import type { SecureConnection } from "../net/secure-socket.ts";
import { parseCommand, UsageError } from "./args.ts";
import { connectNode, NODE_FLAGS, nodeTarget } from "./node-connection.ts";
import { pause, systemTimers } from "../net/system-time.ts";

export const HUB_HELP = `Usage:
  understudy sub FILTER [--count N] [--timeout-ms MS]    print one JSON line per message
                                                         (missed messages are reported on stderr)
  understudy pub TOPIC JSON [--count N] [--interval-ms MS] [--wait-ms MS]
  understudy set KEY JSON
  understudy get KEY

Common flags: --node HOST:PORT (default 127.0.0.1:7401, this machine's node)
              --key FILE (default DATA/network.key; --data DIR or UNDERSTUDY_DATA)
A message's "seq" numbers a --count stream from 1. JSON that does not parse is sent as a string.
pub keeps at most 1000 messages unacknowledged and waits for the node before sending more; it fails
only when the node acknowledges nothing for --wait-ms (default 30000).
`;

/** Messages `pub` sends ahead of the node's acknowledgements: a burst waits for room instead of overflowing the node. */
export const PUB_WINDOW = 1000;
export const DEFAULT_PUB_WAIT_MS = 30_000;

const common = NODE_FLAGS;

type AppLink = { connection: SecureConnection; batch: FrameBatcher; next(): Promise<FromHubFrame | null>; close(): void };

async function openApp(values: Record<string, unknown>, name: string): Promise<AppLink> {
  const target = nodeTarget(values);
  const { networkKey } = target;
  const node = formatHostPort(target.at);
  const queue: (FromHubFrame | null)[] = [];
  let wake: (() => void) | null = null;
  const push = (frame: FromHubFrame | null) => {
    queue.push(frame);
    wake?.();
  };
  const onPayload = (payload: Uint8Array) => {
    for (const text of splitFrames(payload)) {
      const parsed = parseFromHubFrame(text);
      if (parsed.ok) push(parsed.frame);
    }
  };
  const connection = await connectNode(target, "/app", () => ({
    message: onPayload,
    broadcast: (frame) => onPayload(openBroadcast(deriveBroadcastKey(networkKey, broadcastEpoch(frame, node)), frame, node)),
    close: () => push(null),
  }));
  const batch = new FrameBatcher((payload) => connection.send(payload));
  const link: AppLink = {
    connection,
    batch,
    async next() {
      while (queue.length === 0) await new Promise<void>((resolve) => (wake = resolve));
      wake = null;
      return queue.shift()!;
    },
    close: () => {
      batch.flush();
      connection.close(1000, "done");
    },
  };
  send(link, { type: "hello", id: `${name}-${Buffer.from(nacl.randomBytes(6)).toString("hex")}`, name, kind: "app" });
  return link;
}

/** Frames go out batched (frame-batch.ts): a burst of pubs costs one seal and one write per batch. */
function send(link: AppLink, frame: ToHubFrame): void {
  link.batch.push(encodeFrame(frame));
}

function jsonArg(value: string): unknown {
  try {
    return JSON.parse(value);
  } catch {
    return value;
  }
}

function refused(frame: FromHubFrame): never {
  if (frame.type === "error") throw new AppError(frame.code, `The node refused it: ${frame.message}`, { status: 409 });
  throw new AppError("UNEXPECTED", `The node answered with an unexpected ${frame.type} frame.`);
}

export async function hubCommand(command: "pub" | "sub" | "set" | "get", argv: string[]): Promise<number> {
  const extra = {
    pub: { count: { type: "string" }, "interval-ms": { type: "string" }, "wait-ms": { type: "string" } },
    sub: { count: { type: "string" }, "timeout-ms": { type: "string" } },
    set: {},
    get: {},
  } as const;
  const arity = command === "pub" || command === "set" ? 2 : 1;
  const { values, positionals, help } = parseCommand(`understudy ${command}`, argv, { ...common, ...extra[command] }, { min: arity, max: arity });
  if (help) {
    process.stdout.write(HUB_HELP);
    return 0;
  }
  const number = (flag: string, fallback: number) => {
    const raw = (values as Record<string, unknown>)[flag];
    if (raw === undefined) return fallback;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < 0) throw new UsageError(`understudy ${command}: --${flag} must be a whole number, got "${raw}"`);
    return n;
  };
  const link = await openApp(values, `cli-${command}`);
  try {
    if (command === "sub") return await subscribe(link, positionals[0]!, number("count", 0), number("timeout-ms", 0));
    if (command === "pub") {
      const pace = { intervalMs: number("interval-ms", 0), waitMs: Math.max(1, number("wait-ms", DEFAULT_PUB_WAIT_MS)) };
      return await publish(link, positionals[0]!, jsonArg(positionals[1]!), Math.max(1, number("count", 1)), pace);
    }
    if (command === "set") return await setValue(link, positionals[0]!, jsonArg(positionals[1]!));
    return await getValue(link, positionals[0]!);
  } finally {
    link.close();
  }
}

async function subscribe(link: AppLink, filter: string, count: number, timeoutMs: number): Promise<number> {
  send(link, { type: "sub", filter });
  let seen = 0;
  // A cancellable timer: a pending sleep would keep the process alive after the last message.
  let cancel: (() => void) | undefined;
  const deadline = timeoutMs > 0 ? new Promise<"timeout">((resolve) => (cancel = systemTimers.after(timeoutMs, () => resolve("timeout")))) : null;
  try {
    return await receive();
  } finally {
    cancel?.();
  }

  async function receive(): Promise<number> {
    for (;;) {
      const frame = await (deadline ? Promise.race([link.next(), deadline]) : link.next());
      if (frame === "timeout") return count > 0 && seen < count ? 1 : 0;
      if (frame === null) throw new AppError("NODE_GONE", "The node closed the connection.", { status: 503 });
      if (frame.type === "error") refused(frame);
      // Missed messages are said, never skipped silently; stdout stays one message per line.
      if (frame.type === "gap") process.stderr.write(`understudy sub: ${frame.message}\n`);
      if (frame.type !== "msg") continue;
      process.stdout.write(`${JSON.stringify({ topic: frame.topic, data: frame.data, from: frame.from, seq: frame.seq })}\n`);
      if (count > 0 && ++seen >= count) return 0;
    }
  }
}

/**
 * Sends `count` messages, at most PUB_WINDOW ahead of the node's acks (backpressure: a burst waits
 * for room, it is not refused). Fails when the node refuses a message or acknowledges nothing for `waitMs`.
 */
async function publish(link: AppLink, topic: string, data: unknown, count: number, pace: { intervalMs: number; waitMs: number }): Promise<number> {
  const origin = `pub-${Buffer.from(nacl.randomBytes(6)).toString("hex")}`;
  let acked = 0;
  let failure: Error | null = null;
  let wake: (() => void) | null = null;
  const progress = () => {
    wake?.();
    wake = null;
  };
  void (async () => {
    try {
      while (acked < count) {
        const frame = await link.next();
        if (frame === null) throw new AppError("NODE_GONE", `The node closed the connection after ${acked} of ${count} messages were acknowledged.`, { status: 503 });
        if (frame.type === "ack" && frame.origin === origin) acked = Math.max(acked, frame.seq);
        else if (frame.type === "error") refused(frame);
        progress();
      }
    } catch (error) {
      failure = error as Error;
      progress();
    }
  })();
  /** Resolves at the next ack (or failure); throws when none comes within waitMs. */
  const waitForAck = async () => {
    // A refusal that came while nothing was waiting must not wait out waitMs.
    if (failure) throw failure;
    const before = acked;
    let cancel: (() => void) | undefined;
    const timedOut = await new Promise<boolean>((resolve) => {
      wake = () => resolve(false);
      cancel = systemTimers.after(pace.waitMs, () => resolve(true));
    });
    cancel?.();
    if (failure) throw failure;
    if (timedOut && acked === before) {
      throw new AppError(
        "PUBLISH_TIMEOUT",
        `The node acknowledged nothing for ${pace.waitMs / 1000} s (${acked} of ${count} messages acknowledged): no server is reachable, or it is overloaded.`,
        { status: 503 },
      );
    }
  };
  for (let seq = 1; seq <= count; seq++) {
    while (seq - acked > PUB_WINDOW && !failure) await waitForAck();
    if (failure) throw failure;
    send(link, { type: "pub", topic, data, origin, seq });
    if (pace.intervalMs > 0 && seq < count) await pause(pace.intervalMs);
  }
  while (acked < count) await waitForAck();
  return 0;
}

async function setValue(link: AppLink, key: string, value: unknown): Promise<number> {
  const origin = `set-${Buffer.from(nacl.randomBytes(6)).toString("hex")}`;
  send(link, { type: "set", key, value, origin, seq: 1 });
  for (;;) {
    const frame = await link.next();
    if (frame === null) throw new AppError("NODE_GONE", "The node closed the connection before the value was acknowledged.", { status: 503 });
    if (frame.type === "ack" && frame.origin === origin) return 0;
    if (frame.type === "error") refused(frame);
  }
}

async function getValue(link: AppLink, key: string): Promise<number> {
  send(link, { type: "get", key, id: "g1" });
  for (;;) {
    const frame = await link.next();
    if (frame === null) throw new AppError("NODE_GONE", "The node closed the connection before answering.", { status: 503 });
    if (frame.type === "value" && frame.key === key) {
      process.stdout.write(`${JSON.stringify({ key: frame.key, value: frame.value, version: frame.version })}\n`);
      return 0;
    }
    if (frame.type === "error") refused(frame);
  }
}
