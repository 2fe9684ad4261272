/**
 * DNS-SD discovery between real machines on a real (virtual) link: five
 * network namespaces on one bridge (see test/support/netns.ts), nothing on
 * the host's interfaces.
 *
 *   a, b, c  the compiled executable, `understudy run` (c holds another network key)
 *   x        discovery-hostile.ts (malformed announcements and garbage)
 *   v        avahi-daemon on a private D-Bus (interop both ways)
 *
 * Each machine's setup pages listen on 127.0.0.1:7400 inside its own
 * namespace (each has its own loopback), so the test reads them from inside
 * (NetnsLab.http with `from`), as a browser on that machine would.
 *
 * Needs root and iproute2; the Avahi part needs avahi-daemon, avahi-utils.
 * Skips (saying why) otherwise.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { MachineStatus } from "../../src/core/status.ts";
import type { DiscoveredMachine } from "../../src/net/discovery/discovery.ts";
import { executable } from "../support/executable.ts";
import { devLicenseText } from "../support/licenses.ts";
import { must, NetnsLab, netnsUnavailable, sweepStaleLabs, type LabProcess } from "../support/netns.ts";
import { waitFor } from "../support/wait-for.ts";
import { avahiUnavailable, startAvahi, type Avahi } from "./discovery-avahi.ts";

const ROOT = "us-disc";
/** Each namespace has its own loopback, so every machine uses the default UI address. */
const UI = "http://127.0.0.1:7400";
const PEER_PORT = 7401;
/** What discovery-hostile.ts puts in its well-formed services: no real key has this fingerprint. */
const HOSTILE_FINGERPRINT = "0123456789abcdef";
/** The promise: machines list each other within 3 s of starting. */
const DISCOVERY_BUDGET_MS = 3_000;
const HOSTILE_SCRIPT = join(import.meta.dir, "discovery-hostile.ts");

const skipReason = netnsUnavailable();
if (skipReason) console.warn(`[discovery faults] skipped: ${skipReason}`);
const avahiSkip = skipReason ?? avahiUnavailable();
if (!skipReason && avahiSkip) console.warn(`[discovery faults] Avahi interop skipped: ${avahiSkip}`);

/**
 * The role goes in config.json, not --role: a flag pins a setting, and the
 * role-change test changes b's role on its setup page.
 */
const MACHINES = {
  a: { role: "main", key: "shared" },
  b: { role: "server", key: "shared" },
  c: { role: "server", key: "other" },
} as const;
type MachineName = keyof typeof MACHINES;
const MACHINE_NAMES = Object.keys(MACHINES) as MachineName[];

type Discovered = { discovery: "on" | "off" | "standalone"; machines: DiscoveredMachine[] };

describe.skipIf(skipReason !== null)("discovery across network namespaces (the real executable)", () => {
  let lab: NetnsLab | undefined;
  let dir: string | undefined;
  let avahi: Avahi | undefined;
  const running = new Map<MachineName, LabProcess>();
  const fingerprints = { shared: "", other: "" };
  let upAt = 0;

  const labOf = () => {
    if (!lab) throw new Error("lab not created");
    return lab;
  };

  async function getJson<T>(node: MachineName, path: string): Promise<T> {
    const response = await labOf().http(`${UI}${path}`, { from: node, timeoutMs: 1_500 });
    if (response.status !== 200) throw new Error(`${node}: GET ${path} → ${response.status}: ${response.body.slice(0, 200)}`);
    return JSON.parse(response.body) as T;
  }
  const machines = async (node: MachineName) => (await getJson<Discovered>(node, "/api/machines/discovered")).machines;
  const names = (list: DiscoveredMachine[]) => list.map((m) => m.name).sort();

  /** On failure, show what the machines logged: the test output is all CI keeps. */
  async function explained<T>(run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (error) {
      for (const [name, p] of running) console.error(`--- machine ${name} (exit ${p.proc.exitCode}) ---\n${p.output()}`);
      throw error;
    }
  }

  function startMachine(exe: string, node: MachineName): LabProcess {
    const l = labOf();
    const data = join(dir!, `data-${node}`);
    mkdirSync(data, { recursive: true });
    writeFileSync(join(data, "config.json"), `${JSON.stringify({ role: MACHINES[node].role })}\n`);
    const argv = [exe, "run", "--name", `node-${node}`, "--data", data, "--key", join(dir!, `${MACHINES[node].key}.key`)];
    argv.push("--license", join(dir!, "license.json"), "--ui-listen", "127.0.0.1:7400", "--peer-listen", `0.0.0.0:${PEER_PORT}`);
    argv.push("--discovery", "on", "--discovery-interface", l.node(node).iface, "--log", "json");
    const p = l.spawn(node, argv, { env: { HOME: data } });
    running.set(node, p);
    return p;
  }

  beforeAll(async () => {
    const exe = await executable();
    sweepStaleLabs(ROOT);
    lab = NetnsLab.create({ prefix: `${ROOT}-${process.pid}`, nodes: ["a", "b", "c", "x", "v"] });
    dir = mkdtempSync(join(tmpdir(), `${ROOT}-${process.pid}-`));
    for (const key of ["shared", "other"] as const) {
      const file = join(dir, `${key}.key`);
      must([exe, "keys", "generate", "--out", file]);
      fingerprints[key] = must([exe, "keys", "fingerprint", file]).trim();
    }
    writeFileSync(join(dir, "license.json"), devLicenseText({ type: "server-with-failover", holder: "*" }));
    const spawnedAt = performance.now();
    for (const node of MACHINE_NAMES) startMachine(exe, node);
    await explained(() =>
      waitFor("every machine's setup pages", async () => {
        for (const [node, p] of running) if (p.proc.exitCode !== null) throw new Error(`machine ${node} exited with ${p.proc.exitCode}`);
        const all = await Promise.all(MACHINE_NAMES.map((n) => getJson<Discovered>(n, "/api/machines/discovered")));
        return all.every((d) => d.discovery === "on");
      }, 15_000, 50),
    );
    upAt = performance.now();
    console.log(`[discovery faults] three machines answering ${Math.round(upAt - spawnedAt)} ms after spawn`);
  }, 120_000);

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
        Math.max(0, upAt + DISCOVERY_BUDGET_MS - performance.now()),
        50,
      ),
    );
    console.log(`[discovery faults] full mesh ${Math.round(performance.now() - upAt)} ms after the machines' UIs came up`);
    const bStatus = await getJson<MachineStatus>("b", "/api/status");
    const b = (await machines("a")).find((m) => m.name === "node-b");
    expect(b).toMatchObject({
      id: bStatus.id,
      role: "server",
      license: "server-with-failover",
      version: bStatus.version,
      fingerprint: fingerprints.shared,
      epoch: bStatus.failover?.epoch ?? 0,
      port: PEER_PORT,
      keyMismatch: false,
    });
    expect(b?.addresses).toEqual([labOf().node("b").address]);
  }, 10_000);

  test("a machine holding another network key is listed with keyMismatch, both ways", async () => {
    const [a, b, c] = await Promise.all([machines("a"), machines("b"), machines("c")]);
    const mismatch = (list: DiscoveredMachine[]) => Object.fromEntries(list.map((m) => [m.name, m.keyMismatch]));
    expect(mismatch(a)).toEqual({ "node-b": false, "node-c": true });
    expect(mismatch(b)).toEqual({ "node-a": false, "node-c": true });
    expect(mismatch(c)).toEqual({ "node-a": true, "node-b": true });
    expect(a.find((m) => m.name === "node-c")?.fingerprint).toBe(fingerprints.other);
    expect(c.find((m) => m.name === "node-a")?.fingerprint).toBe(fingerprints.shared);

    const page = await labOf().http(`${UI}/machines`, { from: "a" });
    expect(page.status).toBe(200);
    // The Machines table lists both, node-c marked with its key; "Found on the network" lists backups only, and there is none yet.
    expect(page.body).toContain(`Network key differs (${fingerprints.other})`);
    expect(page.body).toContain(`${labOf().node("b").address}:${PEER_PORT}`);
    expect(page.body).not.toContain('data-testid="discovered-table"');
  });

  test("a role changed on the setup page is re-announced and seen by the others at once", async () => {
    const l = labOf();
    const started = performance.now();
    const post = await l.http(`${UI}/setup/role`, { from: "b", form: { role: "backup", main: "", backup: "" }, headers: { origin: UI } });
    expect(post.status).toBe(200);
    expect(post.body).toContain("Saved and applied.");
    expect((await getJson<MachineStatus>("b", "/api/status")).role).toBe("backup");
    await explained(() =>
      waitFor("a and c to see b as a backup server", async () => {
        const seen = await Promise.all([machines("a"), machines("c")]);
        return seen.every((list) => list.some((m) => m.name === "node-b" && m.role === "backup"));
      }, DISCOVERY_BUDGET_MS, 50),
    );
    console.log(`[discovery faults] role change seen after ${Math.round(performance.now() - started)} ms`);
    // Now a backup: "Found on the network" on a lists it, once, at its peer port.
    const page = (await l.http(`${UI}/machines`, { from: "a" })).body;
    const found = page.slice(page.indexOf('data-testid="discovered-table"'));
    expect(found.match(/<td>node-b<\/td>/g)).toHaveLength(1);
    expect(found).toContain(`${l.node("b").address}:${PEER_PORT}`);
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
    for (const node of MACHINE_NAMES) {
      const listed = names(await machines(node));
      expect(listed.filter((n) => !n.startsWith("node-"))).toEqual(["hostile-control", "hostile-upper"]);
      expect(running.get(node)?.proc.exitCode).toBeNull();
      expect(running.get(node)?.output()).toContain('"event":"discovery.ignored"');
    }
    // Upper-case TXT keys are read; the hostile services hold a key nobody here has.
    const upper = (await machines("a")).find((m) => m.name === "hostile-upper");
    expect(upper).toMatchObject({ id: "00000000000000b2", role: "client", license: "client", epoch: 1, fingerprint: HOSTILE_FINGERPRINT, keyMismatch: true });
  }, 15_000);

  test.skipIf(avahiSkip !== null)("Avahi sees our advertisement with its TXT record, and we list Avahi's", async () => {
    const l = labOf();
    avahi = await startAvahi(l, "v", dir ?? tmpdir());
    const seen = await waitFor("avahi-browse to resolve a, b and c", () => {
      const found = avahi?.browse("_understudy._tcp") ?? [];
      const ours = found.filter((s) => s.name.startsWith("node-"));
      return ours.length >= 3 ? ours : null;
    }, 10_000, 200);
    const aStatus = await getJson<MachineStatus>("a", "/api/status");
    const a = seen.find((s) => s.name === "node-a");
    expect(a).toMatchObject({ address: l.node("a").address, port: PEER_PORT });
    expect(a?.txt).toEqual({
      txtvers: "1",
      id: aStatus.id,
      name: "node-a",
      role: "main",
      lic: "server-with-failover",
      ver: aStatus.version,
      fp: fingerprints.shared,
      epoch: String(aStatus.failover?.epoch ?? 0),
    });
    expect(seen.find((s) => s.name === "node-c")?.txt.fp).toBe(fingerprints.other);

    const txt = ["txtvers=1", "id=00000000000000a1", "name=avahi-machine", "role=client", "lic=client", "ver=0.8", `fp=${fingerprints.shared}`, "epoch=3"];
    avahi.publish("Avahi Machine", "_understudy._tcp", 7409, txt);
    const listed = await explained(() =>
      waitFor("a to list the service avahi-publish announced", async () => (await machines("a")).find((m) => m.name === "avahi-machine"), 5_000, 100),
    );
    expect(listed).toMatchObject({ id: "00000000000000a1", role: "client", epoch: 3, port: 7409, keyMismatch: false, addresses: [l.node("v").address] });
    expect((await machines("c")).find((m) => m.name === "avahi-machine")?.keyMismatch).toBe(true);
  }, 30_000);

  test("a machine that stops says goodbye and leaves every list", async () => {
    const b = running.get("b");
    if (!b) throw new Error("no machine b");
    const started = performance.now();
    expect(await b.stop("SIGTERM", 5_000)).toBe(0);
    const exitedMs = Math.round(performance.now() - started);
    expect(b.output()).toContain('"event":"stopped"');
    await explained(() =>
      waitFor("a and c to drop b", async () => {
        const [a, c] = await Promise.all([machines("a"), machines("c")]);
        return !a.some((m) => m.name === "node-b") && !c.some((m) => m.name === "node-b");
      }, DISCOVERY_BUDGET_MS, 50),
    );
    console.log(`[discovery faults] b exited ${exitedMs} ms and was gone from the lists ${Math.round(performance.now() - started)} ms after SIGTERM`);
    expect(names(await machines("a"))).toContain("node-c");
  }, 15_000);
});
