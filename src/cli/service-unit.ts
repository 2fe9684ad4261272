/**
 * What `understudy service` installs: a systemd unit on Linux, and the sc.exe
 * commands that make a Windows service. Plain text from the executable's path
 * and the `run` arguments, so tests read exactly what a kiosk gets.
 */

export const DEFAULT_SERVICE_NAME = "understudy";
export const DEFAULT_UNIT_DIR = "/etc/systemd/system";

/**
 * The environment the service runs `understudy run` in. BUN_JSC_forceRAMSize: JavaScriptCore
 * sizes its heap and how long garbage may pile up from the machine's RAM, and a node's peak RSS
 * is mostly garbage not yet collected (per-message JSON texts and buffers), not what it holds
 * live. Told 1 GiB instead of the machine's 24, client nodes in `bun run bench hub` peaked
 * ≈ 45 MiB lower (≈ 155 against ≈ 200 MiB) at no measured CPU cost per message (bench/RESULTS.md,
 * issue 20 memory). It is read before any JavaScript runs, so it can only come from outside.
 */
export const SERVICE_ENVIRONMENT: Readonly<Record<string, string>> = { BUN_JSC_forceRAMSize: String(1024 * 1024 * 1024) };

/** One ExecStart word: quoted when it holds anything systemd would split or expand (%specifiers, $variables). */
export function systemdWord(word: string): string {
  const escaped = word.replaceAll("%", "%%").replaceAll("$", "$$$$");
  if (word !== "" && /^[A-Za-z0-9_@%+=:,./-]+$/.test(word)) return escaped;
  return `"${escaped.replaceAll("\\", "\\\\").replaceAll('"', '\\"')}"`;
}

export function systemdUnit(executable: string, runArgs: readonly string[]): string {
  const exec = [executable, "run", ...runArgs].map(systemdWord).join(" ");
  return `# Written by "understudy service install"; remove it with "understudy service uninstall".
[Unit]
Description=understudy: keeps a live-production network on air when its server dies
Wants=network-online.target
After=network-online.target

[Service]
Type=simple
${Object.entries(SERVICE_ENVIRONMENT).map(([name, value]) => `Environment=${name}=${value}\n`).join("")}ExecStart=${exec}
Restart=on-failure
RestartSec=2
StandardOutput=journal
StandardError=journal
KillSignal=SIGTERM
TimeoutStopSec=15

[Install]
WantedBy=multi-user.target
`;
}

/** One word of a Windows command line (CommandLineToArgvW rules): quoted when it holds a space, a tab or a quote. */
export function windowsWord(word: string): string {
  if (word !== "" && !/[\s"]/.test(word)) return word;
  let out = '"';
  let slashes = 0;
  for (const ch of word) {
    if (ch === "\\") {
      slashes++;
      continue;
    }
    out += ch === '"' ? "\\".repeat(slashes * 2 + 1) + '"' : "\\".repeat(slashes) + ch;
    slashes = 0;
  }
  return `${out}${"\\".repeat(slashes * 2)}"`;
}

/**
 * Windows: a Bun executable does not answer the service control manager
 * (sc.exe start waits, then fails with error 1053), so the service runs
 * WinSW, a service wrapper that answers it and runs `understudy run` as a
 * child: started at boot, restarted 2 s after a failure, stopped with Ctrl+C
 * then killed after 15 s, its output in rolled log files. WinSW v2 reads the
 * XML file of its own name beside it: `NAME-service.exe` and `NAME-service.xml`.
 */
export function windowsWrapperName(name: string): string {
  return `${name}-service`;
}

const xmlText = (text: string) => text.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;").replaceAll('"', "&quot;");

export function winswConfig(name: string, executable: string, runArgs: readonly string[]): string {
  const args = ["run", ...runArgs].map(windowsWord).join(" ");
  return `<?xml version="1.0" encoding="UTF-8"?>
<!-- Written by "understudy service install"; remove the service with "understudy service uninstall". -->
<service>
  <id>${xmlText(name)}</id>
  <name>${xmlText(name)}</name>
  <description>understudy: keeps a live-production network on air when its server dies</description>
  <executable>${xmlText(executable)}</executable>
  <arguments>${xmlText(args)}</arguments>
${Object.entries(SERVICE_ENVIRONMENT).map(([name, value]) => `  <env name="${xmlText(name)}" value="${xmlText(value)}"/>\n`).join("")}  <startmode>Automatic</startmode>
  <onfailure action="restart" delay="2 sec"/>
  <resetfailure>1 day</resetfailure>
  <stoptimeout>15 sec</stoptimeout>
  <log mode="roll-by-size">
    <sizeThreshold>10240</sizeThreshold>
    <keepFiles>8</keepFiles>
  </log>
</service>
`;
}

/** What install runs: the wrapper registers itself as the service, then starts it. */
export function windowsInstallCommands(wrapper: string, start: boolean): string[][] {
  return start ? [[wrapper, "install"], [wrapper, "start"]] : [[wrapper, "install"]];
}

export function windowsUninstallCommands(wrapper: string): string[][] {
  return [
    [wrapper, "stop"],
    [wrapper, "uninstall"],
  ];
}
