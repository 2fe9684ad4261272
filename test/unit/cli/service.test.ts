import { describe, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { UsageError } from "../../../src/cli/args.ts";
import { serviceCommand, type CommandResult, type ServiceDeps } from "../../../src/cli/service.ts";
import { systemdWord, windowsWord } from "../../../src/cli/service-unit.ts";

const WRAPPER = "C:\\Program Files\\understudy\\understudy-service.exe";
import { tempDir } from "../../support/temp-dirs.ts";

function fakeDeps(platform: NodeJS.Platform, answers: (argv: string[]) => CommandResult = () => ({ code: 0, out: "", err: "" }), files: Record<string, string> = { [WRAPPER]: "WinSW" }) {
  const ran: string[][] = [];
  const printed: string[] = [];
  const written = files;
  const deps: ServiceDeps = {
    platform,
    executable: platform === "win32" ? "C:\\Program Files\\understudy\\understudy.exe" : process.execPath,
    env: { UNDERSTUDY_DATA: "/var/lib/understudy" },
    run: async (argv) => {
      ran.push(argv);
      return answers(argv);
    },
    print: (line) => printed.push(line),
    exists: (path) => path in written,
    write: (path, text) => {
      written[path] = text;
    },
  };
  return { deps, ran, printed, written };
}

async function usageError(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(UsageError);
    const message = (error as Error).message;
    expect(message.split("\n")).toHaveLength(1);
    return message;
  }
  throw new Error("expected a usage error");
}

describe("service on Linux", () => {
  test("install writes a unit with the same run flags, reloads systemd and enables it; systemd-analyze verify accepts it", async () => {
    const dir = tempDir();
    const { deps, ran, printed } = fakeDeps("linux");
    const code = await serviceCommand(["install", "--unit-dir", dir, "--role", "main", "--", "--name", "Stage left", "--ui-listen", "0.0.0.0:7400"], deps);
    expect(code).toBe(0);
    const unit = readFileSync(join(dir, "understudy.service"), "utf8");
    expect(unit).toContain(`ExecStart=${process.execPath} run --role main --name "Stage left" --ui-listen 0.0.0.0:7400 --data /var/lib/understudy\n`);
    expect(unit).toContain("Restart=on-failure\n");
    // JavaScriptCore told 1 GiB of RAM: a node's peak RSS under a burst is mostly garbage it lets pile up by RAM size (issue 20).
    expect(unit).toContain("\nEnvironment=BUN_JSC_forceRAMSize=1073741824\n");
    expect(unit).toContain("StandardOutput=journal\n");
    expect(unit).toContain("WantedBy=multi-user.target\n");
    expect(ran).toEqual([
      ["systemctl", "daemon-reload"],
      ["systemctl", "enable", "--now", "understudy.service"],
    ]);
    expect(printed.at(-1)).toContain("journalctl -u understudy");
    const analyze = Bun.which("systemd-analyze");
    if (!analyze) {
      console.log("skipped systemd-analyze verify: systemd-analyze is not installed (Debian package systemd)");
      return;
    }
    const verify = Bun.spawnSync([analyze, "verify", "--man=no", join(dir, "understudy.service")], { stderr: "pipe", stdout: "pipe" });
    const complaints = verify.stderr
      .toString()
      .split("\n")
      .filter((l) => l.includes("understudy.service"));
    expect(complaints).toEqual([]);
    expect(verify.exitCode).toBe(0);
  });

  test("--no-start writes the unit and runs nothing; relative paths become absolute", async () => {
    const dir = tempDir();
    const { deps, ran } = fakeDeps("linux");
    expect(await serviceCommand(["install", "--unit-dir", dir, "--no-start", "--data", "kiosk-data", "--service-name", "understudy-b"], deps)).toBe(0);
    expect(ran).toEqual([]);
    const unit = readFileSync(join(dir, "understudy-b.service"), "utf8");
    expect(unit).toContain(`--data ${join(process.cwd(), "kiosk-data")}\n`);
  });

  test("status says installed and running, or not; uninstall disables, removes the unit and reloads", async () => {
    const dir = tempDir();
    const notInstalled = fakeDeps("linux");
    expect(await serviceCommand(["status", "--unit-dir", dir], notInstalled.deps)).toBe(3);
    expect(notInstalled.printed[0]).toContain("not installed");
    await serviceCommand(["install", "--unit-dir", dir, "--no-start"], fakeDeps("linux").deps);
    const running = fakeDeps("linux", (argv) => ({ code: 0, out: argv[1] === "is-active" ? "active\n" : "enabled\n", err: "" }));
    expect(await serviceCommand(["status", "--unit-dir", dir], running.deps)).toBe(0);
    expect(running.printed[0]).toMatch(/^understudy: installed \(.*\), running, starts at boot$/);
    const stopped = fakeDeps("linux", (argv) => ({ code: 3, out: argv[1] === "is-active" ? "inactive\n" : "disabled\n", err: "" }));
    expect(await serviceCommand(["status", "--unit-dir", dir], stopped.deps)).toBe(3);
    expect(stopped.printed[0]).toContain("not running (inactive)");
    const removal = fakeDeps("linux", (argv) => ({ code: argv[1] === "disable" ? 5 : 0, out: "", err: "" }));
    expect(await serviceCommand(["uninstall", "--unit-dir", dir], removal.deps)).toBe(0);
    expect(removal.ran).toEqual([
      ["systemctl", "disable", "--now", "understudy.service"],
      ["systemctl", "daemon-reload"],
    ]);
    expect(existsSync(join(dir, "understudy.service"))).toBe(false);
    // Twice: nothing left to do.
    expect(await serviceCommand(["uninstall", "--unit-dir", dir], removal.deps)).toBe(0);
  });

  test("a failing systemctl is one line naming the command", async () => {
    const { deps } = fakeDeps("linux", (argv) => ({ code: argv[1] === "enable" ? 1 : 0, out: "", err: "Failed to enable unit: Access denied\n" }));
    await expect(serviceCommand(["install", "--unit-dir", tempDir()], deps)).rejects.toThrow('"systemctl enable --now understudy.service" failed (exit 1): Failed to enable unit: Access denied');
  });
});

describe("bad command lines: one clear line each, nothing written, nothing run", () => {
  const cases: [string[], string][] = [
    [["install", "--bogus"], "unknown flag --bogus"],
    [["install", "--", "--bogus"], "unknown flag --bogus"],
    [["install", "--role", "king"], "--role"],
    [["install", "--heartbeat-ms", "-5"], "--heartbeat-ms"],
    [["install", "--role", "main", "--", "--role", "backup"], "--role given twice"],
    [["install", "extra"], 'unexpected argument "extra"'],
    [["install", "--service-name", "../evil"], "--service-name"],
    [["install", "--unit-dir"], "--unit-dir needs a value"],
    [["status", "--", "--role", "main"], "takes no run flags"],
    [["uninstall", "--role", "main"], "unknown flag --role"],
    [["restart"], 'unknown command "restart"'],
  ];
  for (const [argv, words] of cases) {
    test(argv.join(" "), async () => {
      const dir = tempDir();
      const { deps, ran } = fakeDeps("linux");
      // Every case names a temp unit dir, so one that wrongly passed could never write to /etc/systemd/system.
      const withDir = argv.includes("--unit-dir") || argv.length === 1 ? argv : [argv[0]!, "--unit-dir", dir, ...argv.slice(1)];
      const message = await usageError(serviceCommand(withDir, deps));
      expect(message).toContain(words);
      expect(ran).toEqual([]);
      expect(existsSync(join(dir, "understudy.service"))).toBe(false);
    });
  }
  test("on an unsupported system", async () => {
    expect(await usageError(serviceCommand(["install"], fakeDeps("darwin").deps))).toContain("Linux (systemd) and Windows only");
  });
});

describe("service on Windows (WinSW: a Bun executable does not answer the service manager, error 1053)", () => {
  test("install writes the wrapper's configuration beside it (same run flags, restart on failure, rolled logs), then installs and starts through it", async () => {
    const { deps, ran, written, printed } = fakeDeps("win32");
    expect(await serviceCommand(["install", "--role", "backup", "--name", "Rack 2", "--data", "/srv/A&B <show>"], deps)).toBe(0);
    const xml = written["C:\\Program Files\\understudy\\understudy-service.xml"]!;
    expect(xml).toContain("<id>understudy</id>");
    expect(xml).toContain("<executable>C:\\Program Files\\understudy\\understudy.exe</executable>");
    expect(xml).toContain("<arguments>run --data &quot;/srv/A&amp;B &lt;show&gt;&quot; --role backup --name &quot;Rack 2&quot;</arguments>");
    expect(xml).toContain("<startmode>Automatic</startmode>");
    expect(xml).toContain('<env name="BUN_JSC_forceRAMSize" value="1073741824"/>');
    expect(xml).toContain('<onfailure action="restart" delay="2 sec"/>');
    expect(xml).toContain('<log mode="roll-by-size">');
    expect(ran).toEqual([
      [WRAPPER, "install"],
      [WRAPPER, "start"],
    ]);
    expect(printed.at(-1)).toContain("understudy-service.out.log");
    const noStart = fakeDeps("win32");
    expect(await serviceCommand(["install", "--no-start", "--service-name", "understudy-b"], fakeDeps("win32", undefined, { "C:\\Program Files\\understudy\\understudy-b-service.exe": "WinSW" }).deps)).toBe(0);
    expect(noStart.ran).toEqual([]);
  });

  test("without the wrapper beside the executable, or with a % in a flag, install refuses in one line and runs nothing", async () => {
    const missing = fakeDeps("win32", undefined, {});
    expect(await usageError(serviceCommand(["install", "--role", "backup"], missing.deps))).toContain("understudy-service.exe is missing: put WinSW");
    expect(missing.ran).toEqual([]);
    const percent = fakeDeps("win32");
    expect(await usageError(serviceCommand(["install", "--data", "/srv/100%"], percent.deps))).toContain("holds a %");
    expect(percent.ran).toEqual([]);
  });

  test("uninstall stops (even when stopped) and uninstalls through the wrapper; status reads sc.exe query", async () => {
    const removal = fakeDeps("win32", (argv) => ({ code: argv[1] === "stop" ? 1062 : 0, out: "", err: "" }));
    expect(await serviceCommand(["uninstall"], removal.deps)).toBe(0);
    expect(removal.ran).toEqual([
      [WRAPPER, "stop"],
      [WRAPPER, "uninstall"],
    ]);
    const running = fakeDeps("win32", () => ({ code: 0, out: "SERVICE_NAME: understudy\n        STATE              : 4  RUNNING\n", err: "" }));
    expect(await serviceCommand(["status"], running.deps)).toBe(0);
    expect(running.printed).toEqual(["understudy: installed, running"]);
    const missing = fakeDeps("win32", () => ({ code: 1060, out: "The specified service does not exist as an installed service.", err: "" }));
    expect(await serviceCommand(["status"], missing.deps)).toBe(3);
    expect(missing.printed).toEqual(["understudy: not installed"]);
  });
});

test("words are quoted the way systemd and Windows split them", () => {
  expect(systemdWord("/opt/understudy")).toBe("/opt/understudy");
  expect(systemdWord("a b")).toBe('"a b"');
  expect(systemdWord('say "hi"\\')).toBe('"say \\"hi\\"\\\\"');
  expect(systemdWord("100%")).toBe("100%%");
  expect(systemdWord("$HOME")).toBe('"$$HOME"');
  expect(systemdWord("")).toBe('""');
  expect(windowsWord("C:\\x")).toBe("C:\\x");
  expect(windowsWord("a b\\")).toBe('"a b\\\\"');
  expect(windowsWord('say "hi"')).toBe('"say \\"hi\\""');
});
