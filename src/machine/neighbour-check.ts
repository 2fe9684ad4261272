/**
 * Linux re-asks for a peer's hardware address (ARP) only every
 * net.ipv4.neigh.*.retrans_time_ms, 1000 ms by default, once an ask went
 * unanswered: after a cable is out for a moment while heartbeats are sent, a
 * machine stays silent for up to that long after the cable is back, and with
 * the default failover timeout that is a failover. Measured in the namespace
 * fault suite (test/faults/network-faults.test.ts): a main whose cable flaps
 * every 300 ms fails over at 1000 ms and never at 100 ms.
 */
import { readFileSync } from "node:fs";

export const NEIGHBOUR_RETRANS_PATH = "/proc/sys/net/ipv4/neigh/default/retrans_time_ms";

/** The warning to log when the interval is too long for this failover timeout, or null. */
export function neighbourRetransWarning(retransMs: number, failoverTimeoutMs: number): string | null {
  if (!(retransMs > failoverTimeoutMs / 4)) return null;
  return (
    `This machine re-asks for a peer's network address only every ${retransMs} ms after a cable is briefly out ` +
    `(net.ipv4.neigh.default.retrans_time_ms), so such a blip can silence it for that long and cause a failover ` +
    `(failover timeout ${failoverTimeoutMs} ms). Set it to 100: sysctl -w net.ipv4.neigh.default.retrans_time_ms=100 ` +
    `(and the same for the network interface in use), and keep it in /etc/sysctl.d.`
  );
}

/** Reads the setting where the system has it (Linux); null elsewhere. */
export function readNeighbourRetransMs(path = NEIGHBOUR_RETRANS_PATH): number | null {
  try {
    const value = Number(readFileSync(path, "utf8").trim());
    return Number.isFinite(value) ? value : null;
  } catch {
    return null;
  }
}
