/**
 * What `understudy service` installs: a systemd unit on Linux, and the sc.exe
 * commands that make a Windows service. Plain text from the executable's path
 * and the `run` arguments, so tests read exactly what a kiosk gets.
 */

export const DEFAULT_SERVICE_NAME = "understudy";
export const DEFAULT_UNIT_DIR = "/etc/systemd/system";

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
ExecStart=${exec}
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

/** sc.exe takes `binPath= VALUE` as two words: the space after "=" is its syntax. */
export function windowsInstallCommands(name: string, executable: string, runArgs: readonly string[], start: boolean): string[][] {
  const binPath = [executable, "run", ...runArgs].map(windowsWord).join(" ");
  const commands = [
    ["sc.exe", "create", name, "binPath=", binPath, "start=", "auto", "DisplayName=", "understudy"],
    ["sc.exe", "description", name, "understudy: keeps a live-production network on air when its server dies"],
    // Restart after 2 s on every failure; the failure count resets after a day.
    ["sc.exe", "failure", name, "reset=", "86400", "actions=", "restart/2000/restart/2000/restart/2000"],
  ];
  if (start) commands.push(["sc.exe", "start", name]);
  return commands;
}

export function windowsUninstallCommands(name: string): string[][] {
  return [
    ["sc.exe", "stop", name],
    ["sc.exe", "delete", name],
  ];
}
