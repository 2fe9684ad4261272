/**
 * Which process listens on a TCP port, for the "already in use" message
 * (issue 18 finding 9): on Linux from /proc (the socket's inode, then the
 * process holding it); null elsewhere, or when that process belongs to
 * another user and its descriptors cannot be read.
 */
import { readdirSync, readFileSync, readlinkSync } from "node:fs";

export type PortHolder = { pid: number; command: string };

/** Inodes of sockets listening on `port` (state 0A), from /proc/net/tcp and tcp6 text. */
export function listeningInodes(tables: readonly string[], port: number): Set<string> {
  const inodes = new Set<string>();
  for (const table of tables) {
    for (const line of table.split("\n").slice(1)) {
      const fields = line.trim().split(/\s+/);
      const local = fields[1];
      if (!local || fields[3] !== "0A") continue;
      if (Number.parseInt(local.slice(local.lastIndexOf(":") + 1), 16) === port && fields[9] && fields[9] !== "0") inodes.add(fields[9]);
    }
  }
  return inodes;
}

function readOr(path: string, fallback: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return fallback;
  }
}

export function portHolder(port: number, selfPid = process.pid): PortHolder | null {
  if (process.platform !== "linux") return null;
  const inodes = listeningInodes([readOr("/proc/net/tcp", ""), readOr("/proc/net/tcp6", "")], port);
  if (inodes.size === 0) return null;
  const targets = new Set([...inodes].map((inode) => `socket:[${inode}]`));
  let pids: string[];
  try {
    pids = readdirSync("/proc").filter((name) => /^\d+$/.test(name));
  } catch {
    return null;
  }
  for (const pid of pids) {
    if (Number(pid) === selfPid) continue;
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      let link: string;
      try {
        link = readlinkSync(`/proc/${pid}/fd/${fd}`);
      } catch {
        continue;
      }
      if (targets.has(link)) return { pid: Number(pid), command: readOr(`/proc/${pid}/comm`, "?").trim() };
    }
  }
  return null;
}
