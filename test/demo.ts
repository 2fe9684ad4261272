/**
 * `npm run demo`: a main, a backup and two clients on this machine's loopback,
 * from the built executable, with a development license. It prints the setup
 * pages and commands to try, and stops by itself after DEMO_MINUTES (30) or on Ctrl-C.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { freePeerPort } from "./support/cluster.ts";
import { executable } from "./support/executable.ts";
import { devLicenseText } from "./support/licenses.ts";
import { demoControl } from "./demo-control.tsx";

const minutes = Number(process.env.DEMO_MINUTES ?? 30);
const bin = await executable();
const dir = mkdtempSync(join(tmpdir(), "understudy-demo-"));
const keyFile = join(dir, "network.key");
const licenseFile = join(dir, "license.json");
Bun.spawnSync([bin, "keys", "generate", "--out", keyFile]);
writeFileSync(licenseFile, devLicenseText({ type: "server-with-failover", holder: "*" }));

const machines: { name: string; role: string; ui: number; peer: number; mqtt: number; proc?: Subprocess }[] = [];
for (const [name, role] of [["main", "main"], ["backup", "backup"], ["render-1", "client"], ["control-1", "client"]] as const) {
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

const main = machines[0]!;
const control = Bun.serve({
  hostname: "127.0.0.1",
  port: 0,
  fetch: demoControl({
    machines: machines.map((m) => ({ name: m.name, role: m.role, ui: `http://127.0.0.1:${m.ui}`, running: () => m.proc?.exitCode === null && !m.proc.signalCode })),
    stopMain: async () => {
      main.proc?.kill("SIGKILL");
      await main.proc?.exited;
    },
    startMain: async () => {
      if (main.proc?.exitCode === null && !main.proc.signalCode) return;
      launch(main);
    },
  }).fetch,
}).port;

const stop = async () => {
  for (const m of machines) m.proc?.kill("SIGTERM");
  await Promise.all(machines.map((m) => m.proc?.exited));
  rmSync(dir, { recursive: true, force: true });
  process.exit(0);
};
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
setTimeout(stop, minutes * 60_000);

const exe = `${bin} `;
console.log(`understudy demo: four machines on loopback (stops by itself in ${minutes} min, or Ctrl-C)\n`);
console.log(`  Open http://127.0.0.1:${control}/ : "Stop main server" and "Start main server" beside every machine's console.\n`);
for (const m of machines) console.log(`  ${m.name.padEnd(10)} ${m.role.padEnd(7)} setup pages http://127.0.0.1:${m.ui}/machines   MQTT 127.0.0.1:${m.mqtt}   (pid ${m.proc!.pid})`);
console.log(`
Try:
  ${exe}sub 'studio/#' --node ${at("control-1")} --key ${keyFile}
  ${exe}pub studio/cam1 '{"zoom":2}' --count 1000 --interval-ms 10 --node ${at("render-1")} --key ${keyFile}
  kill -9 ${machines[0]!.proc!.pid}     # the main dies: the backup takes over, the chips read "Backup is active"
`);
