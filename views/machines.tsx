/** @jsxImportSource hono/jsx */
/** The Machines panel: machines found on the network (DNS-SD), with a key mismatch flagged before anyone tries them. */
import type { MachineStatus } from "../src/core/status.ts";
import type { DiscoveredMachine } from "../src/net/discovery/discovery.ts";
import { ROLE_LABELS } from "../src/core/roles.ts";
import { Layout } from "./layout.tsx";
import { RefusalNote } from "./refusal.tsx";

const gigabytes = (bytes: number) => `${(bytes / 1e9).toFixed(1)} GB`;

export function DiscoveredList(props: { machines: DiscoveredMachine[]; discovery: "on" | "off" | "standalone" }) {
  return (
    <section id="discovered" class="card" hx-get="/partials/discovered" hx-trigger="every 2s" hx-swap="outerHTML">
      <h2>Found on the network</h2>
      {props.discovery === "off" ? (
        <p>Discovery is off (--discovery off): type addresses instead.</p>
      ) : props.discovery === "standalone" ? (
        <p>A stand-alone machine does not look for others. Choose a role on the setup page.</p>
      ) : props.machines.length === 0 ? (
        <p>No other understudy machine found yet. Typing an address always works.</p>
      ) : (
        <table data-testid="discovered-table">
          <thead>
            <tr>
              <th>Name</th>
              <th>Role</th>
              <th>Address</th>
              <th>Network key</th>
              <th>Version</th>
            </tr>
          </thead>
          <tbody>
            {props.machines.map((m) => (
              <tr data-machine-id={m.id} class={m.keyMismatch ? "mismatch" : undefined}>
                <td>{m.name}</td>
                <td>{ROLE_LABELS[m.role]}</td>
                <td>{m.addresses.map((a) => `${a}:${m.port}`).join(", ")}</td>
                <td>{m.keyMismatch ? <strong class="field-error">different key ({m.fingerprint})</strong> : "same key"}</td>
                <td>{m.version}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

/** Who this machine hears and the round trip to each (the echo of their heartbeats). */
export function PeerList(props: { status: MachineStatus }) {
  const failover = props.status.failover;
  return (
    <section id="peers" class="card" hx-get="/partials/peers" hx-trigger="every 1s" hx-swap="outerHTML">
      <h2>Heard on the network</h2>
      <RefusalNote refusal={failover?.refusal} />
      {failover === null ? (
        <p>A stand-alone machine does not talk to others.</p>
      ) : failover.peers.length === 0 ? (
        <p>No other machine heard yet.</p>
      ) : (
        <table data-testid="peer-table">
          <thead>
            <tr>
              <th>Name</th>
              <th>Role</th>
              <th>Address</th>
              <th>Delay</th>
              <th>Last heard</th>
            </tr>
          </thead>
          <tbody>
            {failover.peers.map((p) => (
              <tr data-machine-id={p.id} class={p.lastHeardMsAgo > 1000 ? "mismatch" : undefined}>
                <td>{p.name}</td>
                <td>{p.role}</td>
                <td>{p.address}</td>
                <td>{p.delayMs === null ? "–" : `${p.delayMs.toFixed(1)} ms`}</td>
                <td>{p.lastHeardMsAgo < 1000 ? "now" : `${(p.lastHeardMsAgo / 1000).toFixed(0)} s ago`}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {props.status.showFile ? (
        <p data-testid="show-file-status">
          Show file at revision {props.status.showFile.head}; backup copy:{" "}
          {{
            none: "no backup",
            disconnected: `not connected (${props.status.showFile.backup.behindBy} behind)`,
            syncing: `syncing ${Math.round((props.status.showFile.backup.progress ?? 0) * 100)} %`,
            "in-sync": "in sync",
            behind: `behind by ${props.status.showFile.backup.behindBy}`,
          }[props.status.showFile.backup.state]}
          .
        </p>
      ) : null}
      {props.status.storage ? (
        <p data-testid="storage-status">
          Asset Hub cache:{" "}
          {(["main", "backup"] as const)
            .flatMap((server) => {
              const usage = props.status.storage?.[server];
              return usage ? [`${server} ${gigabytes(usage.cacheBytes)} (${gigabytes(usage.freeBytes)} free)`] : [];
            })
            .join("; ")}
          .{props.status.storage.warning ? <strong class="warning"> {props.status.storage.warning}</strong> : null}
        </p>
      ) : null}
      {failover ? (
        <p>
          Epoch {failover.epoch}; Data Hub {failover.hubConnected ? `linked to ${failover.activeServer === "self" ? "this machine" : `the ${failover.activeServer} server`}` : "not linked"}
          {failover.queued > 0 ? `, ${failover.queued} messages waiting` : ""}.
        </p>
      ) : null}
    </section>
  );
}

export function MachinesPage(props: { status: MachineStatus; machines: DiscoveredMachine[]; discovery: "on" | "off" | "standalone" }) {
  return (
    <Layout title="Machines" status={props.status}>
      <h1>Machines</h1>
      {props.status.role === "main" && props.status.failover?.state === "standby" ? (
        <section class="card" id="switch-back">
          <h2>The backup is serving the network</h2>
          <p>This main server is back and has caught up. It waits for you (--failback manual).</p>
          <form hx-post="/failover/switch-back" hx-target="#switch-back-result" method="post" action="/failover/switch-back">
            <button type="submit" data-testid="switch-back">Switch back to the main server</button>
          </form>
          <div id="switch-back-result"></div>
        </section>
      ) : null}
      <PeerList status={props.status} />
      <DiscoveredList machines={props.machines} discovery={props.discovery} />
    </Layout>
  );
}
