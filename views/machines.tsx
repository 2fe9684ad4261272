/** @jsxImportSource hono/jsx */
/**
 * The Machines panel: a row per machine (this one included, servers first),
 * Add Backup server on the main, the delete icon on the Backup server row,
 * and the switch-back card of a main waiting in standby. The table, the card
 * and the discovered list are live parts: /events sends them again when they change.
 */
import type { MachineStatus } from "../src/core/status.ts";
import type { DiscoveredMachine } from "../src/net/discovery/discovery.ts";
import type { MachineRow } from "../src/web/machine-rows.ts";
import { Layout } from "./layout.tsx";

export type Discovered = { discovery: "on" | "off" | "standalone"; machines: DiscoveredMachine[] };
export type MachinesView = { status: MachineStatus; rows: MachineRow[]; discovered: Discovered };

const oob = (on: boolean | undefined) => (on ? "true" : undefined);
export const formatDelay = (ms: number | null) => (ms === null ? "–" : ms < 10 ? `${ms.toFixed(1)} ms` : `${Math.round(ms)} ms`);

/** Drawn inline: control-room machines may have no emoji font. */
function TrashIcon() {
  return (
    <svg width="20" height="20" viewBox="0 0 24 24" aria-hidden="true" fill="none" stroke="currentColor" stroke-width="2">
      <path d="M4 7h16M9 7V4h6v3M6 7l1 13h10l1-13M10 11v6M14 11v6" />
    </svg>
  );
}

/** This machine is the main and holds the pairing with that row's backup: it may remove it. */
function removable(view: MachinesView, row: MachineRow): boolean {
  const s = view.status;
  return (s.role === "main" || s.role === "server") && row.kind === "backup" && s.failover?.pairing?.peerId === row.id;
}

export function MachinesTable(props: { view: MachinesView; outOfBand?: boolean }) {
  const { view } = props;
  return (
    <section id="machines-table" class="card wide" hx-swap-oob={oob(props.outOfBand)}>
      <h2>Machines</h2>
      <table data-testid="machines-table">
        <thead>
          <tr>
            <th>Name</th>
            <th>Role</th>
            <th>Address</th>
            <th>License</th>
            <th>Network key</th>
            <th>State</th>
            <th class="num">Round trip</th>
            <th></th>
          </tr>
        </thead>
        <tbody>
          {view.rows.map((r) => (
            <tr data-machine-id={r.id} data-role={r.kind} class={[r.self ? "self" : "", r.keyDiffers ? "mismatch" : "", r.heard ? "" : "silent"].join(" ").trim() || undefined}>
              <td>
                {r.name}
                {r.self ? <span class="tag">this machine</span> : null}
              </td>
              <td>{r.roleLabel}</td>
              <td>{r.address}</td>
              <td>{r.license}</td>
              <td>{r.fingerprint === null ? "–" : r.keyDiffers ? <strong class="field-error">{r.fingerprint} (differs)</strong> : <code>{r.fingerprint}</code>}</td>
              <td>{r.state}</td>
              <td class="num">{r.self ? "–" : formatDelay(r.delayMs)}</td>
              <td>
                {removable(view, r) ? (
                  <form method="post" action="/machines/backup/remove" hx-post="/machines/backup/remove" hx-target="#backup-result" hx-confirm={`Remove ${r.name} as the backup server?`}>
                    <button type="submit" class="icon danger" aria-label={`Remove the backup server ${r.name}`} title="Remove the backup server" data-testid="remove-backup">
                      <TrashIcon />
                    </button>
                  </form>
                ) : null}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

/** Always present (maybe empty) so the live stream can fill it in or clear it. */
export function SwitchBackCard(props: { status: MachineStatus; outOfBand?: boolean }) {
  const s = props.status;
  const waiting = (s.role === "main" || s.role === "server") && s.failover?.state === "standby";
  return (
    <div id="switch-back" hx-swap-oob={oob(props.outOfBand)}>
      {waiting ? (
        <section class="card attention">
          <h2>The backup is serving the network</h2>
          <p>This main server is back and has caught up. It waits for you to switch back (manual failback).</p>
          <form hx-post="/failover/switch-back" hx-target="#switch-back-result" method="post" action="/failover/switch-back">
            <button type="submit" class="primary" data-testid="switch-back">
              Switch back to the main server
            </button>
          </form>
        </section>
      ) : null}
    </div>
  );
}

/** Add Backup server, on a main with no backup: a machine found on the network or a typed address. */
export function AddBackupCard(props: { view: MachinesView; error?: string; value?: string; saved?: string }) {
  const s = props.view.status;
  const isMain = s.role === "main" || s.role === "server";
  if (!isMain && !props.error) return <div id="add-backup"></div>;
  if (s.failover?.pairing && !props.error) {
    return (
      <div id="add-backup">
        {props.saved ? <p class="saved" role="status">{props.saved}</p> : null}
      </div>
    );
  }
  const candidates = props.view.discovered.machines.filter((m) => m.role === "backup" && !m.keyMismatch);
  return (
    <section id="add-backup" class="card">
      <h2>Add Backup server</h2>
      <form hx-post="/machines/backup" hx-target="#add-backup" hx-swap="outerHTML" method="post" action="/machines/backup">
        <label for="backup-address">Backup server: a machine found on the network, or its IP address</label>
        <input id="backup-address" name="address" list="backup-candidates" value={props.value ?? ""} placeholder="10.0.0.2:7401" autocomplete="off" aria-invalid={props.error ? "true" : undefined} />
        <datalist id="backup-candidates">
          {candidates.flatMap((m) => m.addresses.map((a) => <option value={`${a}:${m.port}`}>{m.name}</option>))}
        </datalist>
        {props.error ? (
          <p class="field-error" role="alert" data-testid="address-error">
            {props.error}
          </p>
        ) : null}
        <button type="submit" class="primary" data-testid="add-backup">
          Add Backup server
        </button>
      </form>
    </section>
  );
}

export function DiscoveredList(props: Discovered & { outOfBand?: boolean }) {
  return (
    <section id="discovered" class="card" hx-swap-oob={oob(props.outOfBand)}>
      <h2>Found on the network</h2>
      {props.discovery === "off" ? (
        <p>Discovery is off on this machine: type addresses instead.</p>
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
                <td>{m.role}</td>
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

/** The live parts of the Machines panel. */
export function MachinesLive(props: { view: MachinesView; outOfBand?: boolean }) {
  return (
    <>
      <SwitchBackCard status={props.view.status} outOfBand={props.outOfBand} />
      <MachinesTable view={props.view} outOfBand={props.outOfBand} />
      <DiscoveredList {...props.view.discovered} outOfBand={props.outOfBand} />
    </>
  );
}

export function MachinesPage(props: { view: MachinesView }) {
  return (
    <Layout title="Machines" status={props.view.status} panel="machines">
      <h1>Machines</h1>
      <div id="switch-back-result"></div>
      <div id="backup-result"></div>
      <SwitchBackCard status={props.view.status} />
      <MachinesTable view={props.view} />
      <div class="columns">
        <AddBackupCard view={props.view} />
        <DiscoveredList {...props.view.discovered} />
      </div>
    </Layout>
  );
}
