/**
 * A client cut from the main alone (docs/design.md §Data Hub, issue 10): four
 * machines of the real executable in network namespaces (test/support/netns.ts);
 * nftables in c2's namespace drops everything between c2 and the main for a
 * few seconds while c1 publishes. The backup still hears the main (and c1
 * does too), so nobody fails over: c2 leaves the main and comes back to it at
 * the same epoch, and must get every message published meanwhile from the
 * hub's replay ring, once and in order. That used to lose them all, silently.
 *
 * Needs root, iproute2 and nftables; skips (saying why) otherwise.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { executable } from "../support/executable.ts";
import { devLicenseText } from "../support/licenses.ts";
import { must, NetnsLab, netnsUnavailable, sweepStaleLabs, type LabProcess } from "../support/netns.ts";
import { waitFor } from "../support/wait-for.ts";

const ROOT = "us-hcut";
const UI = "http://127.0.0.1:7400";
const PEER_PORT = 7401;
const NODES = ["main", "backup", "c1", "c2"] as const;
type Node = (typeof NODES)[number];
/** Longer than the failover timeout (1 s): c2 gives up on the main and reconnects once the cut heals. */
const CUT_MS = 4_000;
const COUNT = 1_200;

const skipReason = netnsUnavailable() ?? (Bun.which("nft") === null ? "nft (nftables) is not installed" : null);
if (skipReason) console.warn(`[hub cut] skipped: ${skipReason}`);

describe.skipIf(skipReason !== null)("a client cut from the main alone (the real executable, namespaces)", () => {
  let lab: NetnsLab | undefined;
  let dir = "";
  let exe = "";
  const running = new Map<Node, LabProcess>();
  const labOf = () => lab!;
  const peer = (node: Node) => `${labOf().node(node).address}:${PEER_PORT}`;

  async function status(node: Node): Promise<{ chip: string; failover?: { hubConnected: boolean; epoch: number; activeServer: string | null } }> {
    const response = await labOf().http(`${UI}/api/status`, { from: node, timeoutMs: 1_500 });
    return JSON.parse(response.body);
  }

  async function explained<T>(run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (error) {
      for (const [name, p] of running) console.error(`--- machine ${name} (exit ${p.proc.exitCode}) ---\n${p.output().slice(-4000)}`);
      throw error;
    }
  }

  beforeAll(async () => {
    exe = await executable();
    sweepStaleLabs(ROOT);
    lab = NetnsLab.create({ prefix: `${ROOT}-${process.pid}`, nodes: [...NODES], multicastRoute: false });
    dir = mkdtempSync(join(tmpdir(), `${ROOT}-${process.pid}-`));
    must([exe, "keys", "generate", "--out", join(dir, "net.key")]);
    writeFileSync(join(dir, "license.json"), devLicenseText({ type: "server-with-failover", holder: "*" }));
    const roles: Record<Node, string[]> = {
      main: ["--role", "main", "--backup", peer("backup")],
      backup: ["--role", "backup", "--main", peer("main")],
      c1: ["--role", "client", "--main", peer("main"), "--backup", peer("backup")],
      c2: ["--role", "client", "--main", peer("main"), "--backup", peer("backup")],
    };
    for (const node of NODES) {
      const data = join(dir, `data-${node}`);
      mkdirSync(data, { recursive: true });
      const argv = [exe, "run", "--name", node, "--data", data, "--key", join(dir, "net.key"), "--license", join(dir, "license.json")];
      argv.push("--ui-listen", "127.0.0.1:7400", "--peer-listen", `0.0.0.0:${PEER_PORT}`, "--discovery", "off", "--mqtt-listen", "off", "--log", "json", ...roles[node]);
      running.set(node, labOf().spawn(node, argv, { env: { HOME: data } }));
    }
    await explained(() =>
      waitFor(
        "every client on the main's Data Hub",
        async () => (await Promise.all((["c1", "c2"] as const).map(status))).every((s) => s.failover?.hubConnected === true && s.chip === "Backup is idle"),
        20_000,
        100,
      ),
    );
  }, 120_000);

  afterAll(async () => {
    await lab?.cleanup();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 20_000);

  test(
    "c2 gets every message published during the cut, once, in order; nobody fails over",
    async () => {
      const l = labOf();
      const app = (node: Node, args: string[]) => [exe, ...args, "--node", `127.0.0.1:${PEER_PORT}`, "--key", join(dir, "net.key")];
      const out = join(dir, "sub.jsonl");
      const sub = l.spawn("c2", ["sh", "-c", `exec ${app("c2", ["sub", "t/#", "--count", String(COUNT + 1), "--timeout-ms", "60000"]).join(" ")} > ${out}`]);
      const lines = () => readFileSync(out, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l) as { topic: string; seq: number });
      // The subscription is live once a warm-up message arrives.
      await explained(() =>
        waitFor(
          "a warm-up message at c2",
          async () => {
            l.exec("c1", app("c1", ["pub", "t/warm", "1"]), 10_000);
            await Bun.sleep(200);
            return lines().length > 0;
          },
          15_000,
          0,
        ),
      );
      const epoch = (await status("main")).failover!.epoch;
      const publisher = l.spawn("c1", app("c1", ["pub", "t/stream", '{"cue":1}', "--count", String(COUNT), "--interval-ms", "5"]));
      await waitFor("the stream under way at c2", () => lines().filter((x) => x.topic === "t/stream").length >= 100, 15_000);
      const mainAddress = l.node("main").address;
      const cut = [
        "add table inet cut",
        "add chain inet cut in { type filter hook input priority 0 ; }",
        "add chain inet cut out { type filter hook output priority 0 ; }",
        `add rule inet cut in ip saddr ${mainAddress} drop`,
        `add rule inet cut out ip daddr ${mainAddress} drop`,
      ];
      for (const rule of cut) expect(l.exec("c2", ["nft", ...rule.split(" ")]).exitCode).toBe(0);
      await Bun.sleep(CUT_MS);
      expect(l.exec("c2", ["nft", "delete", "table", "inet", "cut"]).exitCode).toBe(0);
      expect(await publisher.exited).toBe(0);
      await explained(() => waitFor("every message at c2", () => lines().filter((x) => x.topic === "t/stream").length >= COUNT, 30_000, 100));
      await Bun.sleep(300);
      const seqs = lines()
        .filter((x) => x.topic === "t/stream")
        .map((x) => x.seq);
      expect(seqs).toEqual(Array.from({ length: COUNT }, (_, i) => i + 1));
      expect((await status("main")).failover!.epoch).toBe(epoch);
      // c2 did leave the main and come back to it (the path under test), at the same epoch.
      expect(running.get("c2")!.output().split('"event":"hub link up"').length - 1).toBeGreaterThanOrEqual(2);
      await sub.stop("SIGKILL");
    },
    120_000,
  );
});
