/**
 * Avahi (Debian's avahi-daemon + avahi-utils) inside one lab namespace, to
 * check that our DNS-SD interoperates with the usual Linux implementation.
 *
 * The recipe, without touching the host's D-Bus, /run or network:
 *   1. a private bus: `dbus-daemon --config-file DIR/bus.conf --nofork --nopidfile`
 *      listening on unix:path=DIR/bus.sock, with a policy that allows everything
 *      (the stock system policy would need avahi-dbus.conf and the avahi user);
 *   2. `avahi-daemon -f DIR/avahi-daemon.conf --no-drop-root --no-chroot
 *      --no-proc-title --no-rlimits`, with DBUS_SYSTEM_BUS_ADDRESS pointing at
 *      the private bus, after mounting a tmpfs on /run (its pid file and socket
 *      live in /run/avahi-daemon; `ip netns exec` gives each command its own
 *      mount namespace, so the host's /run is untouched);
 *   3. `avahi-browse` / `avahi-publish` with the same DBUS_SYSTEM_BUS_ADDRESS.
 */
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { LabProcess, NetnsLab } from "../support/netns.ts";
import { waitFor } from "../support/wait-for.ts";

const TOOLS = ["avahi-daemon", "avahi-browse", "avahi-publish", "dbus-daemon"];

/** Why the Avahi checks cannot run here, or null. */
export function avahiUnavailable(): string | null {
  const missing = TOOLS.filter((tool) => !Bun.which(tool, { PATH: `${process.env.PATH ?? ""}:/usr/sbin:/sbin` }));
  return missing.length ? `${missing.join(", ")} not installed (apt-get install -y --no-install-recommends avahi-daemon avahi-utils dbus-daemon)` : null;
}

/** One `=` line of `avahi-browse -p -r`: a resolved service. */
export interface AvahiService {
  iface: string;
  protocol: string;
  name: string;
  type: string;
  host: string;
  address: string;
  port: number;
  txt: Record<string, string>;
}

export interface Avahi {
  readonly env: Record<string, string>;
  /** `avahi-browse -rpt TYPE`: the resolved services it knows now. */
  browse(type: string): AvahiService[];
  /** `avahi-publish -s NAME TYPE PORT TXT…` until the lab is cleaned up (or stop() on the result). */
  publish(name: string, type: string, port: number, txt: string[]): LabProcess;
}

const BUS_CONF = (socket: string) => `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=${socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
`;

const AVAHI_CONF = (iface: string, hostName: string) => `[server]
host-name=${hostName}
use-ipv4=yes
use-ipv6=no
allow-interfaces=${iface}
enable-dbus=yes
ratelimit-interval-usec=1000000
ratelimit-burst=1000
[wide-area]
enable-wide-area=no
[publish]
publish-hinfo=no
publish-workstation=no
publish-addresses=yes
[reflector]
[rlimits]
`;

/** Starts a private bus and avahi-daemon in `node`; files go in `dir` (a fresh temp directory). */
export async function startAvahi(lab: NetnsLab, node: string, dir: string): Promise<Avahi> {
  const socket = join(dir, "bus.sock");
  writeFileSync(join(dir, "bus.conf"), BUS_CONF(socket));
  writeFileSync(join(dir, "avahi-daemon.conf"), AVAHI_CONF(lab.node(node).iface, `usdisc-avahi-${node}`));
  const env = { DBUS_SYSTEM_BUS_ADDRESS: `unix:path=${socket}` };

  const bus = lab.spawn(node, ["dbus-daemon", "--config-file", join(dir, "bus.conf"), "--nofork", "--nopidfile"]);
  await waitFor(`the private D-Bus socket (${bus.output()})`, () => existsSync(socket), 5_000);

  const daemon = lab.spawn(
    node,
    [
      "sh",
      "-c",
      `mount -t tmpfs -o size=1m,mode=0755 tmpfs /run && exec avahi-daemon -f ${join(dir, "avahi-daemon.conf")} --no-drop-root --no-chroot --no-proc-title --no-rlimits`,
    ],
    { env },
  );
  await waitFor("avahi-daemon startup", () => {
    if (daemon.proc.exitCode !== null) throw new Error(`avahi-daemon exited: ${daemon.output()}`);
    return daemon.output().includes("Server startup complete");
  }, 10_000, 50);

  return {
    env,
    browse(type) {
      const result = lab.exec(node, ["avahi-browse", "-r", "-p", "-t", type], 10_000, env);
      if (result.exitCode !== 0) throw new Error(`avahi-browse failed (exit ${result.exitCode}): ${result.stderr.trim()}`);
      return parseBrowse(result.stdout);
    },
    publish(name, type, port, txt) {
      return lab.spawn(node, ["avahi-publish", "-s", name, type, String(port), ...txt], { env });
    },
  };
}

/** Parses `avahi-browse -p -r` output: `=;iface;proto;name;type;domain;host;address;port;"k=v" "k=v"`. */
export function parseBrowse(stdout: string): AvahiService[] {
  const services: AvahiService[] = [];
  for (const line of stdout.split("\n")) {
    if (!line.startsWith("=;")) continue;
    const f = line.split(";");
    if (f.length < 10) continue;
    const txtField = f.slice(9).join(";");
    const txt: Record<string, string> = {};
    for (const m of txtField.matchAll(/"((?:[^"\\]|\\.)*)"/g)) {
      const entry = m[1] ?? "";
      const eq = entry.indexOf("=");
      if (eq > 0) txt[entry.slice(0, eq)] = entry.slice(eq + 1);
    }
    services.push({
      iface: f[1] ?? "",
      protocol: f[2] ?? "",
      name: unescapeAvahi(f[3] ?? ""),
      type: f[4] ?? "",
      host: f[6] ?? "",
      address: f[7] ?? "",
      port: Number(f[8]),
      txt,
    });
  }
  return services;
}

/** avahi-browse -p writes some characters as \DDD (decimal), e.g. a space as \032. */
function unescapeAvahi(text: string): string {
  return text.replace(/\\(\d{3})/g, (_, d: string) => String.fromCharCode(Number(d))).replace(/\\(.)/g, "$1");
}
