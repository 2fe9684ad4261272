/**
 * Issue 8, finding 4: an isolated main fences itself. A main, its backup and
 * a client, each in its own network namespace on one bridge (test/support/
 * netns.ts); the main's cable is pulled for 10 s. The backup takes over; the
 * main must see that it hears no one, report "Main isolated" and stop
 * acknowledging what its own local apps publish, so nothing it acknowledges
 * is lost: after the cable is back, a subscriber on the client holds every
 * message. Today the main serves through the whole cut and acknowledges
 * everything, and what it acknowledged reaches no one.
 *
 * Each machine's setup pages listen on 127.0.0.1:7400 in its own namespace; a
 * status poller in each namespace writes what it sees to a file. Needs root
 * and iproute2; skips (saying why) otherwise.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { FAST, Subscriber } from "../support/cluster.ts";
import { executable } from "../support/executable.ts";
import { devLicenseText } from "../support/licenses.ts";
import { NetnsLab, netnsUnavailable, sweepStaleLabs, type LabProcess } from "../support/netns.ts";
import { readPolls, type StatusPoll } from "../support/status-poller.ts";
import { tempDir } from "../support/temp-dirs.ts";
import { waitFor } from "../support/wait-for.ts";

const ROOT = "us-iso";
const SUBNET = "10.232.0";
const UI = "http://127.0.0.1:7400";
const PEER_PORT = 7401;
const NODES = ["main", "backup", "client"] as const;
type Node = (typeof NODES)[number];
const ADDRESS: Record<Node, string> = { main: `${SUBNET}.1:${PEER_PORT}`, backup: `${SUBNET}.2:${PEER_PORT}`, client: `${SUBNET}.3:${PEER_PORT}` };
const ROLE_FLAGS: Record<Node, string[]> = {
  main: ["--role", "main", "--backup", ADDRESS.backup],
  backup: ["--role", "backup", "--main", ADDRESS.main],
  client: ["--role", "client", "--main", ADDRESS.main, "--backup", ADDRESS.backup],
};
const CUT_MS = 10_000;
/** Both servers may serve for a moment while the main notices it is alone; not after this. */
const FENCE_GRACE_MS = 2_000;
/** "Within a few seconds", with the fast preset. */
const SWITCH_MS = 5_000;
const POLL_EVERY_MS = 50;
const PUBLISHED = 100;
const POLLER = join(import.meta.dir, "../support/status-poller.ts");

const skipReason = netnsUnavailable();
if (skipReason) console.warn(`[isolated main] skipped: ${skipReason}`);

describe.skipIf(skipReason !== null)("an isolated main fences itself (issue 8, finding 4; network namespaces)", () => {
  let lab: NetnsLab | undefined;
  let exe = "";
  const dir = tempDir(`${ROOT}-`);
  const keyFile = join(dir, "network.key");
  const pollFile = (node: Node) => join(dir, `${node}.polls.jsonl`);
  const helpers = new Set<Subprocess>();
  const machines = new Map<Node, LabProcess>();

  /** Runs the executable inside `node`'s namespace (a local app on that machine). */
  function spawnIn(node: Node, args: string[], opts: { timeoutMs?: number } = {}): Subprocess<"ignore", "pipe", "pipe"> {
    const proc = Bun.spawn(["ip", "netns", "exec", lab!.node(node).ns, exe, ...args], {
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
      env: { PATH: "/usr/bin:/bin:/usr/sbin:/sbin", HOME: dir },
      timeout: opts.timeoutMs,
      killSignal: "SIGKILL",
    });
    helpers.add(proc);
    return proc;
  }

  async function runIn(node: Node, args: string[], timeoutMs = 15_000): Promise<{ code: number; out: string; err: string }> {
    const proc = spawnIn(node, args, { timeoutMs });
    const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
    helpers.delete(proc);
    return { code, out, err };
  }

  const appFlags = ["--node", `127.0.0.1:${PEER_PORT}`, "--key", keyFile];
  const latest = (node: Node) => readPolls(pollFile(node)).at(-1)?.status ?? null;
  const stateOf = (poll: StatusPoll | undefined) => poll?.status?.failover?.state ?? null;

  /** What each machine said last, and its log's tail: the test output is all CI keeps. */
  function explain(): string {
    const tail = (n: Node) => (machines.get(n)?.output() ?? "").trim().split("\n").slice(-8).join("\n");
    const brief = (n: Node) => {
      const s = latest(n);
      return JSON.stringify(s && { chip: s.chip, state: s.failover?.state, epoch: s.failover?.epoch, activeServer: s.failover?.activeServer, hubConnected: s.failover?.hubConnected });
    };
    return NODES.map((n) => `--- ${n}: ${brief(n)}\n${tail(n)}`).join("\n");
  }

  beforeAll(async () => {
    exe = await executable();
    sweepStaleLabs(ROOT);
    lab = NetnsLab.create({ prefix: `${ROOT}-${process.pid}`, nodes: [...NODES], subnet: SUBNET, multicastRoute: false });
    const keys = await runIn("main", ["keys", "generate", "--out", keyFile]);
    if (keys.code !== 0) throw new Error(`keys generate: ${keys.err}`);
    const license = join(dir, "license.json");
    writeFileSync(license, devLicenseText({ type: "server-with-failover", holder: "*" }));
    for (const node of NODES) {
      const data = join(dir, `data-${node}`);
      mkdirSync(data);
      const machine = lab.spawn(node, [exe, "run", "--name", node, "--data", data, "--key", keyFile, "--license", license, "--log", "json", "--discovery", "off",
        "--ui-listen", "127.0.0.1:7400", "--peer-listen", `0.0.0.0:${PEER_PORT}`,
        "--heartbeat-ms", String(FAST.heartbeatMs), "--failover-timeout-ms", String(FAST.failoverTimeoutMs), ...ROLE_FLAGS[node]], { env: { HOME: data } });
      machines.set(node, machine);
      lab.spawn(node, [process.execPath, POLLER, UI, pollFile(node), String(POLL_EVERY_MS), "55000"]);
    }
  }, 60_000);

  afterAll(async () => {
    for (const proc of helpers) proc.kill("SIGKILL");
    await Promise.all([...helpers].map((p) => p.exited));
    await lab?.cleanup();
  }, 20_000);

  test(
    "cut off for 10 s, the main reports 'Main isolated', never serves beside the backup, and acknowledges nothing that is lost",
    async () => {
      await waitFor(
        "the main serving, the backup idle, the client on the main",
        () => {
          const [m, b, c] = NODES.map(latest);
          return m?.failover?.state === "active" && b?.failover?.state === "idle" && c?.failover?.activeServer === "main" && c.failover.hubConnected === true && c.chip === "Backup is idle";
        },
        15_000,
      ).catch((error) => {
        throw new Error(`${(error as Error).message}\n${explain()}`);
      });

      const sub = new Subscriber(spawnIn("client", ["sub", "t/#", ...appFlags, "--timeout-ms", "60000"]));
      await waitFor(
        "a message from an app on the main to reach the subscriber on the client",
        async () => {
          await runIn("main", ["pub", "t/warm", '"warm-up"', ...appFlags]);
          await Bun.sleep(200);
          return sub.on("t/warm").length > 0;
        },
        10_000,
        0,
      );

      const cutAt = Date.now();
      lab!.disconnect("main");
      await waitFor("the main to report 'Main isolated'", () => latest("main")?.failover?.state === "isolated" && latest("main")?.chip === "Main isolated", SWITCH_MS).catch(
        (error) => {
          lab!.connect("main");
          throw new Error(`${(error as Error).message}\n${explain()}`);
        },
      );

      // Everything this app publishes goes in while the main is isolated: none of it may be acknowledged and then lost.
      const publishing = runIn("main", ["pub", "t/stream", '{"cue":"isolated"}', ...appFlags, "--count", String(PUBLISHED), "--interval-ms", "20"], 40_000);
      await Bun.sleep(Math.max(0, cutAt + CUT_MS - Date.now())); // the fault lasts 10 s; nothing is being waited for
      lab!.connect("main");
      const healAt = Date.now();

      // Never two servers serving once the main had time to notice it is alone.
      const main = readPolls(pollFile("main"));
      const backup = readPolls(pollFile("backup"));
      const both = main.filter((m) => {
        if (m.t < cutAt + FENCE_GRACE_MS || m.t > healAt || stateOf(m) !== "active") return false;
        return stateOf(backup.filter((b) => b.t <= m.t).at(-1)) === "active";
      });
      if (both.length > 0) {
        throw new Error(`both servers active at ${both.length} of the main's polls during the cut, from ${both[0]!.t - cutAt} ms to ${both.at(-1)!.t - cutAt} ms after it began\n${explain()}`);
      }

      const pub = await publishing;
      expect(pub.err).toBe("");
      expect(pub.code).toBe(0); // every message acknowledged, so every one must reach the subscriber
      expect((await runIn("main", ["pub", "t/end", '"end"', ...appFlags])).code).toBe(0);
      await waitFor("the end marker at the subscriber", () => sub.on("t/end").length > 0, 10_000);
      expect(sub.on("t/stream").map((l) => l.seq)).toEqual(Array.from({ length: PUBLISHED }, (_, i) => i + 1));
    },
    60_000,
  );

  test(
    "an app on the main publishing every 10 ms through a 10 s cut: every message it acknowledged reaches the client's subscriber, also those of the second before it fenced",
    async () => {
      await waitFor(
        "the main serving again, the backup idle, the client on the main",
        () => {
          const [m, b, c] = NODES.map(latest);
          return m?.failover?.state === "active" && b?.failover?.state === "idle" && c?.failover?.activeServer === "main" && c.failover.hubConnected === true;
        },
        20_000,
      ).catch((error) => {
        throw new Error(`${(error as Error).message}\n${explain()}`);
      });
      const sub = new Subscriber(spawnIn("client", ["sub", "u/#", ...appFlags, "--timeout-ms", "60000"]));
      await waitFor(
        "a message from the main at the client's subscriber",
        async () => {
          await runIn("main", ["pub", "u/warm", '"warm-up"', ...appFlags]);
          await Bun.sleep(200);
          return sub.on("u/warm").length > 0;
        },
        10_000,
        0,
      );
      const COUNT = 1_500;
      const publishing = runIn("main", ["pub", "u/stream", '{"cue":"through the cut"}', ...appFlags, "--count", String(COUNT), "--interval-ms", "10"], 50_000);
      await waitFor("the first messages at the subscriber", () => sub.on("u/stream").length > 20, 10_000);
      lab!.disconnect("main");
      await Bun.sleep(CUT_MS); // the fault lasts 10 s; nothing is being waited for
      lab!.connect("main");
      const pub = await publishing;
      expect(pub.err).toBe("");
      expect(pub.code).toBe(0); // every message acknowledged, so every one must reach the subscriber
      expect((await runIn("main", ["pub", "u/end", '"end"', ...appFlags])).code).toBe(0);
      await waitFor("the end marker at the subscriber", () => sub.on("u/end").length > 0, 15_000);
      const seqs = new Set(sub.on("u/stream").map((l) => l.seq));
      const missing = Array.from({ length: COUNT }, (_, i) => i + 1).filter((seq) => !seqs.has(seq));
      expect(missing).toEqual([]);
    },
    60_000,
  );
});
