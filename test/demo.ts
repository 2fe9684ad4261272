/**
 * `npm run demo`: a main, a backup, two render engines with a backup engine
 * and a control machine (clients) on this machine's loopback, from the built
 * executable, with a development license and discovery off, plus a simulated
 * Videohub (test/support/videohub-sim.ts, never a real router). The main is
 * given the router and the backup group Green through its own pages' forms.
 * It prints the setup pages and commands to try, and stops by itself after
 * DEMO_MINUTES (30) or on Ctrl-C.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { freePeerPort } from "./support/cluster.ts";
import { executable } from "./support/executable.ts";
import { devLicenseText } from "./support/licenses.ts";
import { demoControl } from "./demo-control.tsx";
import { VideohubSim } from "./support/videohub-sim.ts";
import { waitFor } from "./support/wait-for.ts";

const minutes = Number(process.env.DEMO_MINUTES ?? 30);
const bin = await executable();
const dir = mkdtempSync(join(tmpdir(), "understudy-demo-"));
const keyFile = join(dir, "network.key");
const licenseFile = join(dir, "license.json");
Bun.spawnSync([bin, "keys", "generate", "--out", keyFile]);
writeFileSync(licenseFile, devLicenseText({ type: "server-with-failover", holder: "*" }));

const machines: { name: string; role: string; ui: number; peer: number; mqtt: number; proc?: Subprocess }[] = [];
const ROLES = [["main", "main"], ["backup", "backup"], ["render-1", "client"], ["render-2", "client"], ["render-spare", "client"], ["control-1", "client"]] as const;
for (const [name, role] of ROLES) {
  machines.push({ name, role, ui: await freePeerPort(), peer: await freePeerPort(), mqtt: await freePeerPort() });
}
const at = (name: string) => `127.0.0.1:${machines.find((m) => m.name === name)!.peer}`;
function launch(m: (typeof machines)[number]): void {
  const pairing = m.role === "main" ? ["--backup", at("backup")] : m.role === "backup" ? ["--main", at("main")] : ["--main", at("main"), "--backup", at("backup")];
  const data = join(dir, m.name);
  m.proc = Bun.spawn(
    [bin, "run", "--role", m.role, "--name", m.name, "--data", data, "--key", keyFile, "--license", licenseFile, "--discovery", "off", "--log", "json", "--ui-listen", `127.0.0.1:${m.ui}`, "--peer-listen", `127.0.0.1:${m.peer}`, "--mqtt-listen", `127.0.0.1:${m.mqtt}`, ...pairing],
    { stdout: "ignore", stderr: "inherit" },
  );
}
for (const m of machines) launch(m);

const byName = (name: string) => machines.find((m) => m.name === name)!;
const running = (m: (typeof machines)[number]) => m.proc?.exitCode === null && !m.proc.signalCode;
const stoppable = (name: string, label: string) => ({
  name,
  label,
  stop: async () => {
    const m = byName(name);
    m.proc?.kill("SIGKILL");
    await m.proc?.exited;
  },
  start: async () => {
    const m = byName(name);
    if (!running(m)) launch(m);
  },
});

// The router: render-1 on destination 5 (source 1), render-2 on 6 (source 2), render-spare's output on source 9.
const router = new VideohubSim({ inputs: 12, outputs: 12 }).start();
router.routes[4] = 0;
router.routes[5] = 1;
const engineOf: Record<number, string> = { 0: "render-1", 1: "render-2", 8: "render-spare" };
const ui = (name: string) => `http://127.0.0.1:${byName(name).ui}`;
await setUpEngineBackups();

const control = Bun.serve({
  hostname: "127.0.0.1",
  port: 0,
  fetch: demoControl({
    machines: [
      ...machines.map((m) => ({ name: m.name, role: m.role, ui: ui(m.name), running: () => running(m) })),
      { name: "main: Health", role: "main", ui: ui("main"), running: () => running(byName("main")), page: "/health" },
    ],
    switches: [stoppable("main", "main server"), stoppable("render-1", "render-1")],
    router: () => [4, 5].map((d) => `Destination ${d + 1} ← source ${router.routes[d]! + 1} (${engineOf[router.routes[d]!] ?? "another source"})`),
  }).fetch,
}).port;

/** The router and the group Green, posted to the main's own forms once every engine is heard. */
async function setUpEngineBackups(): Promise<void> {
  const idOf = async (name: string) => {
    const status = (await (await fetch(`${ui(name)}/api/status`)).json()) as { id: string };
    return status.id;
  };
  const post = async (path: string, fields: Record<string, string>) => {
    const answer = await fetch(`${ui("main")}${path}`, { method: "POST", body: new URLSearchParams(fields), headers: { origin: ui("main") } });
    if (!answer.ok) throw new Error(`the demo could not post ${path} to the main: ${answer.status}`);
  };
  await waitFor(
    "every machine answering",
    async () => (await Promise.all(machines.map((m) => fetch(`${ui(m.name)}/api/status`).then((r) => r.ok, () => false)))).every(Boolean),
    30_000,
  );
  const [render1, render2, spare] = await Promise.all(["render-1", "render-2", "render-spare"].map(idOf));
  await post("/backup-groups/router", { router: `127.0.0.1:${router.port}`, routerEnabled: "on" });
  const group = { name: "Green", main0: render1!, main0Sources: "1", main0Destinations: "5", main1: render2!, main1Sources: "2", main1Destinations: "6" };
  await post("/backup-groups", { ...group, backup: spare!, backupSources: "9", mode: "auto", switchBack: "auto", holdSeconds: "3" });
}

const stop = async () => {
  for (const m of machines) m.proc?.kill("SIGTERM");
  await Promise.all(machines.map((m) => m.proc?.exited));
  router.stop();
  rmSync(dir, { recursive: true, force: true });
  process.exit(0);
};
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
setTimeout(stop, minutes * 60_000);

const exe = `${bin} `;
console.log(`understudy demo: ${machines.length} machines and a simulated Videohub on loopback (stops by itself in ${minutes} min, or Ctrl-C)\n`);
console.log(`  Open http://127.0.0.1:${control}/ : "Stop main server" and "Stop render-1" (and Start) beside every machine's console.`);
console.log(`  The simulated Videohub listens on 127.0.0.1:${router.port}; the main's Backup groups panel holds the group Green.\n`);
for (const m of machines) console.log(`  ${m.name.padEnd(10)} ${m.role.padEnd(7)} setup pages http://127.0.0.1:${m.ui}/machines   MQTT 127.0.0.1:${m.mqtt}   (pid ${m.proc!.pid})`);
console.log(`
Try:
  ${exe}sub 'studio/#' --node ${at("control-1")} --key ${keyFile}
  ${exe}pub studio/cam1 '{"zoom":2}' --count 1000 --interval-ms 10 --node ${at("render-1")} --key ${keyFile}
  kill -9 ${machines[0]!.proc!.pid}     # the main dies: the backup takes over, the chips read "Backup is active"
  kill -9 ${byName("render-1").proc!.pid}     # render-1 dies: destination 5 gets render-spare's source 9; ${ui("main")}/health says so
`);
