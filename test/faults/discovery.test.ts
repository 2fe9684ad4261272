/**
 * DNS-SD discovery between real processes on a real (virtual) link: five
 * network namespaces on one bridge (see test/support/netns.ts), nothing on
 * the host's interfaces.
 *
 *   a, b, c  discovery-peer.ts (c holds another network key)
 *   x        discovery-hostile.ts (malformed announcements and garbage)
 *   v        avahi-daemon on a private D-Bus (interop both ways)
 *
 * Needs root and iproute2; the Avahi part needs avahi-daemon, avahi-utils.
 * Skips (saying why) otherwise.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { DiscoveredMachine } from "../../src/net/discovery/discovery.ts";
import { NetnsLab, netnsUnavailable, sweepStaleLabs, type LabProcess } from "../support/netns.ts";
import { waitFor } from "../support/wait-for.ts";
import { avahiUnavailable, startAvahi, type Avahi } from "./discovery-avahi.ts";

const ROOT = "us-disc";
const HTTP_PORT = 8080;
const PEER_PORT = 7401;
const KEY = "0123456789abcdef";
const OTHER_KEY = "fedcba9876543210";
/** The promise: machines list each other within 3 s of starting. */
const DISCOVERY_BUDGET_MS = 3_000;
const PEER_SCRIPT = join(import.meta.dir, "discovery-peer.ts");
const HOSTILE_SCRIPT = join(import.meta.dir, "discovery-hostile.ts");

const skipReason = netnsUnavailable();
if (skipReason) console.warn(`[discovery faults] skipped: ${skipReason}`);
const avahiSkip = skipReason ?? avahiUnavailable();
if (!skipReason && avahiSkip) console.warn(`[discovery faults] Avahi interop skipped: ${avahiSkip}`);

const PEERS = {
  a: { role: "main", fingerprint: KEY },
  b: { role: "backup", fingerprint: KEY },
  c: { role: "client", fingerprint: OTHER_KEY },
} as const;
type PeerName = keyof typeof PEERS;

describe.skipIf(skipReason !== null)("discovery across network namespaces", () => {
  let lab: NetnsLab | undefined;
  let dir: string | undefined;
  let avahi: Avahi | undefined;
  const peers = new Map<PeerName, LabProcess>();
  let peersUpAt = 0;

  const labOf = () => {
    if (!lab) throw new Error("lab not created");
    return lab;
  };

  async function machines(node: PeerName): Promise<DiscoveredMachine[]> {
    const l = labOf();
    const response = await l.httpGet(`http://${l.node(node).address}:${HTTP_PORT}/machines`, { timeoutMs: 1_500 });
    if (response.status !== 200) throw new Error(`${node}: GET /machines → ${response.status}`);
    return JSON.parse(response.body) as DiscoveredMachine[];
  }
  const names = (list: DiscoveredMachine[]) => list.map((m) => m.name).sort();

  /** On failure, show what the peers logged: the test output is all CI keeps. */
  async function explained<T>(run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (error) {
      for (const [name, p] of peers) console.error(`--- peer ${name} ---\n${p.output()}`);
      throw error;
    }
  }

  function startPeer(node: PeerName): LabProcess {
    const { role, fingerprint } = PEERS[node];
    // Silent machines drop out after this (the peer HTTP shows it); goodbyes are much faster.
    const argv = [process.execPath, PEER_SCRIPT, "--name", `node-${node}`, "--role", role, "--fingerprint", fingerprint];
    argv.push("--port", String(PEER_PORT), "--interface", labOf().node(node).iface, "--http", String(HTTP_PORT));
    const p = labOf().spawn(node, argv);
    peers.set(node, p);
    return p;
  }

  beforeAll(async () => {
    sweepStaleLabs(ROOT);
    lab = NetnsLab.create({ prefix: `${ROOT}-${process.pid}`, nodes: ["a", "b", "c", "x", "v"] });
    dir = mkdtempSync(join(tmpdir(), `${ROOT}-${process.pid}-`));
    for (const node of Object.keys(PEERS) as PeerName[]) startPeer(node);
    await explained(() =>
      waitFor("every peer's HTTP server", async () => {
        const lists = await Promise.all((Object.keys(PEERS) as PeerName[]).map(machines));
        return lists.length === 3;
      }, 15_000, 50),
    );
    peersUpAt = performance.now();
  }, 30_000);

  afterAll(async () => {
    await lab?.cleanup();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 20_000);

  test("each machine lists the other two within 3 s, never itself", async () => {
    await explained(() =>
      waitFor(
        "a full mesh",
        async () => {
          const [a, b, c] = await Promise.all([machines("a"), machines("b"), machines("c")]);
          return names(a).join() === "node-b,node-c" && names(b).join() === "node-a,node-c" && names(c).join() === "node-a,node-b";
        },
        Math.max(0, peersUpAt + DISCOVERY_BUDGET_MS - performance.now()),
        50,
      ),
    );
    console.log(`[discovery faults] full mesh ${Math.round(performance.now() - peersUpAt)} ms after the peers' HTTP came up`);
    const fromA = await machines("a");
    const b = fromA.find((m) => m.name === "node-b");
    expect(b).toMatchObject({ role: "backup", license: "server-with-failover", fingerprint: KEY, epoch: 0, port: PEER_PORT, keyMismatch: false });
    expect(b?.addresses).toEqual([labOf().node("b").address]);
    expect(b?.id).toMatch(/^[0-9a-f]{16}$/);
  }, 10_000);

  test("a machine holding another network key is listed with keyMismatch, both ways", async () => {
    const [a, b, c] = await Promise.all([machines("a"), machines("b"), machines("c")]);
    const mismatch = (list: DiscoveredMachine[]) => Object.fromEntries(list.map((m) => [m.name, m.keyMismatch]));
    expect(mismatch(a)).toEqual({ "node-b": false, "node-c": true });
    expect(mismatch(b)).toEqual({ "node-a": false, "node-c": true });
    expect(mismatch(c)).toEqual({ "node-a": true, "node-b": true });
    expect(a.find((m) => m.name === "node-c")?.fingerprint).toBe(OTHER_KEY);
  });

  test("update() re-announces the TXT record: a new epoch and role are seen at once", async () => {
    const l = labOf();
    const started = performance.now();
    const post = await l.http(`http://${l.node("b").address}:${HTTP_PORT}/self`, { json: { role: "main", epoch: 7 } });
    expect(post.status).toBe(204);
    await explained(() =>
      waitFor("a and c to see b at epoch 7", async () => {
        const seen = await Promise.all([machines("a"), machines("c")]);
        return seen.every((list) => list.some((m) => m.name === "node-b" && m.epoch === 7 && m.role === "main"));
      }, DISCOVERY_BUDGET_MS, 50),
    );
    console.log(`[discovery faults] TXT update seen after ${Math.round(performance.now() - started)} ms`);
  }, 10_000);

  test("malformed and hostile announcements are ignored and nobody crashes", async () => {
    const l = labOf();
    const hostile = l.spawn("x", [process.execPath, HOSTILE_SCRIPT, "--address", l.node("x").address, "--rounds", "10", "--every-ms", "300"]);
    await explained(() =>
      waitFor("the well-formed hostile-* services to be listed", async () => {
        const lists = await Promise.all([machines("a"), machines("b"), machines("c")]);
        return lists.every((list) => ["hostile-control", "hostile-upper"].every((n) => list.some((m) => m.name === n)));
      }, 8_000, 100),
    );
    expect(await hostile.exited).toBe(0);
    for (const node of ["a", "b", "c"] as const) {
      const listed = names(await machines(node));
      expect(listed.filter((n) => !n.startsWith("node-"))).toEqual(["hostile-control", "hostile-upper"]);
      expect(peers.get(node)?.proc.exitCode).toBeNull();
      expect(peers.get(node)?.output()).toContain('"event":"discovery.ignored"');
    }
    const upper = (await machines("a")).find((m) => m.name === "hostile-upper");
    expect(upper).toMatchObject({ id: "00000000000000b2", role: "client", license: "client", epoch: 1, keyMismatch: false });
  }, 15_000);

  test.skipIf(avahiSkip !== null)("Avahi sees our advertisement with its TXT record, and we list Avahi's", async () => {
    const l = labOf();
    avahi = await startAvahi(l, "v", dir ?? tmpdir());
    const seen = await waitFor("avahi-browse to resolve a, b and c", () => {
      const found = avahi?.browse("_understudy._tcp") ?? [];
      const ours = found.filter((s) => s.name.startsWith("node-"));
      return ours.length >= 3 ? ours : null;
    }, 10_000, 200);
    const a = seen.find((s) => s.name === "node-a");
    expect(a).toMatchObject({ address: l.node("a").address, port: PEER_PORT });
    expect(a?.txt).toMatchObject({ txtvers: "1", name: "node-a", role: "main", lic: "server-with-failover", fp: KEY, epoch: "0" });
    expect(a?.txt.id).toMatch(/^[0-9a-f]{16}$/);

    const txt = ["txtvers=1", "id=00000000000000a1", "name=avahi-machine", "role=client", "lic=client", "ver=0.8", `fp=${KEY}`, "epoch=3"];
    avahi.publish("Avahi Machine", "_understudy._tcp", 7409, txt);
    const listed = await explained(() =>
      waitFor("a to list the service avahi-publish announced", async () => (await machines("a")).find((m) => m.name === "avahi-machine"), 5_000, 100),
    );
    expect(listed).toMatchObject({ id: "00000000000000a1", role: "client", epoch: 3, port: 7409, keyMismatch: false, addresses: [l.node("v").address] });
  }, 30_000);

  test("a machine that stops says goodbye and leaves every list", async () => {
    const b = peers.get("b");
    if (!b) throw new Error("no peer b");
    const started = performance.now();
    expect(await b.stop("SIGTERM", 5_000)).toBe(0);
    expect(b.output()).toContain('"event":"peer.stopped"');
    await explained(() =>
      waitFor("a and c to drop b", async () => {
        const [a, c] = await Promise.all([machines("a"), machines("c")]);
        return !a.some((m) => m.name === "node-b") && !c.some((m) => m.name === "node-b");
      }, DISCOVERY_BUDGET_MS, 50),
    );
    console.log(`[discovery faults] b gone from the lists ${Math.round(performance.now() - started)} ms after SIGTERM`);
    expect(names(await machines("a"))).toContain("node-c");
  }, 15_000);
});
