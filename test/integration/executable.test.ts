/**
 * The compiled executable on its own: copied into an empty folder with no
 * node_modules and no Bun on PATH, as an installer would copy it to a kiosk.
 */
import { beforeAll, describe, expect, test } from "bun:test";
import { copyFileSync, existsSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { executable } from "../support/executable.ts";
import { devLicenseText } from "../support/licenses.ts";
import { startMachine, tempDir } from "../support/machine-process.ts";

let bin: string;
let folder: string;
const cleanEnv = (home: string) => ({ PATH: "/usr/bin:/bin", HOME: home });

function run(args: string[], env: Record<string, string> = {}) {
  const result = Bun.spawnSync([bin, ...args], { cwd: folder, env: { ...cleanEnv(folder), ...env }, stdin: "ignore" });
  return { code: result.exitCode, out: result.stdout.toString(), err: result.stderr.toString() };
}

beforeAll(async () => {
  const built = await executable();
  folder = tempDir("understudy-kiosk-");
  bin = join(folder, "understudy");
  copyFileSync(built, bin);
  Bun.spawnSync(["chmod", "+x", bin]);
});

describe("the executable alone in an empty folder", () => {
  test("both targets are built; the Windows one is a PE file", () => {
    const exe = join(import.meta.dir, "../../dist/understudy-windows-x64.exe");
    expect(existsSync(exe)).toBe(true);
    expect(readFileSync(exe).subarray(0, 2).toString()).toBe("MZ");
    expect(readdirSync(folder)).toEqual(["understudy"]);
  });

  test("--version prints the stamped version and commit", () => {
    const { code, out } = run(["--version"]);
    expect(code).toBe(0);
    expect(out).toMatch(/^understudy \d+\.\d+\.\d+ \((?:[0-9a-f]{12}(?:-dirty)?|unknown)\)\n$/);
  });

  test.each([["--help"], ["run", "--help"], ["keys", "--help"], ["license", "--help"], ["status", "--help"], ["keys", "generate", "--help"]])("%p %p prints help", (...args) => {
    const { code, out } = run((args as unknown[]).filter((a): a is string => typeof a === "string"));
    expect(code).toBe(0);
    expect(out).toContain("Usage");
  });

  test.each([
    [["run", "--bogus"], "unknown flag --bogus"],
    [["--heartbeat-ms", "soon"], "--heartbeat-ms: expected a whole number of milliseconds"],
    [["run", "--role", "primary"], "--role"],
    [["run", "--role"], "flag --role needs a value"],
    [["frobnicate"], 'unknown command "frobnicate"'],
    [["keys", "fingerprint"], "missing argument"],
    [["keys", "fingerprint", "/nonexistent"], "/nonexistent does not exist"],
  ])("%p is refused with one line naming it, exit 2", (args, message) => {
    const { code, err } = run(args as string[]);
    expect(code).toBe(2);
    expect(err).toContain(message as string);
    expect(err.trim().split("\n")).toHaveLength(1);
  });

  test("keys and licenses from the command line", () => {
    const gen = run(["keys", "generate", "--out", join(folder, "net.key")]);
    expect(gen.code).toBe(0);
    const fp = run(["keys", "fingerprint", join(folder, "net.key")]).out.trim();
    expect(gen.out).toContain(fp);
    expect(run(["keys", "generate", "--out", join(folder, "net.key")]).code).toBe(2);
    writeFileSync(join(folder, "lic.json"), devLicenseText({ type: "server", holder: "kiosk-1", days: 5 }));
    const show = run(["license", "show", join(folder, "lic.json")]);
    expect(show.code).toBe(0);
    expect(show.out).toContain("type:     server");
    expect(show.out).toContain("holder:   kiosk-1");
    writeFileSync(join(folder, "bad.json"), readFileSync(join(folder, "lic.json"), "utf8").replace("kiosk-1", "kiosk-2"));
    const bad = run(["license", "show", join(folder, "bad.json")]);
    expect(bad.code).toBe(2);
    expect(bad.err).toContain("not signed by the understudy vendor key");
  });

  test("headless start with flags: API, pages, htmx from /static, a bad form, status, SIGTERM", async () => {
    const dataDir = tempDir();
    run(["keys", "generate", "--out", join(dataDir, "kiosk.key")]);
    writeFileSync(join(dataDir, "kiosk.lic"), devLicenseText({ type: "server", holder: "kiosk-1" }));
    const m = await startMachine(["--role", "server", "--name", "kiosk-1", "--key", join(dataDir, "kiosk.key"), "--license", join(dataDir, "kiosk.lic")], {
      bin,
      cwd: folder,
      dataDir,
    });
    const status = await (await fetch(`${m.ui}/api/status`)).json();
    expect(status).toMatchObject({ name: "kiosk-1", role: "server", chip: "No backup" });
    expect(status.peerListen).toMatch(/^127\.0\.0\.1:\d+$/);

    const page = await (await fetch(`${m.ui}/setup`)).text();
    expect(page).toContain('<script src="/static/htmx.min.js"></script>');
    const htmx = new Uint8Array(await (await fetch(`${m.ui}/static/htmx.min.js`)).arrayBuffer());
    expect(Buffer.from(htmx).equals(readFileSync(join(import.meta.dir, "../../node_modules/htmx.org/dist/htmx.min.js")))).toBe(true);

    const bad = await fetch(`${m.ui}/setup/role`, { method: "POST", headers: { origin: m.ui }, body: new URLSearchParams({ role: "client", main: "nowhere" }) });
    expect(bad.status).toBe(400);
    expect(await bad.text()).toContain("Type an IP address such as 10.0.0.1");

    const cli = run(["status", "--json", "--ui", m.ui]);
    expect(cli.code).toBe(0);
    expect(JSON.parse(cli.out)).toMatchObject({ role: "server", name: "kiosk-1" });

    const { code, ms } = await m.stop();
    expect(code).toBe(0);
    expect(ms).toBeLessThan(2000);
    expect(readdirSync(dataDir).filter((f) => f.endsWith(".tmp"))).toEqual([]);
    expect(JSON.parse(readFileSync(join(dataDir, "machine.key"), "utf8")).understudyMachineKey).toBe(1);
    expect(m.lines.some((l) => l.event === "stopped")).toBe(true);
  });

  test("status against nothing says so", () => {
    const { code, err } = run(["status", "--ui", "http://127.0.0.1:9"]);
    expect(code).toBe(1);
    expect(err).toContain("No understudy answers at http://127.0.0.1:9");
  });

  test("a start the license does not allow exits 2 and says why", () => {
    const { code, err } = run(["run", "--role", "main", "--data", tempDir(), "--discovery", "off", "--ui-listen", "127.0.0.1:0"]);
    expect(code).toBe(2);
    expect(err).toContain("Main server needs a");
  });

  test("a system folder as the show folder, also through a link, exits 2 with one line saying why", () => {
    const link = join(tempDir(), "show");
    symlinkSync("/etc", link);
    for (const [folderFlag, says] of [
      ["/etc", "/etc is a system folder"],
      [link, `${link} leads to /etc, a system folder`],
      ["/proc/self", "/proc/self leads to /proc/"],
    ] as const) {
      const { code, err } = run(["run", "--data", tempDir(), "--discovery", "off", "--ui-listen", "127.0.0.1:0", "--show-folder", folderFlag]);
      expect(code).toBe(2);
      expect(err).toStartWith(`understudy run: --show-folder: ${says}`);
      expect(err.trimEnd().split("\n")).toHaveLength(1);
    }
  });
});
