/** @jsxImportSource hono/jsx */
/**
 * The Machines panel: a row per machine (this one included, servers first),
 * Add Backup server on the right of the Main server row, the delete icon on
 * the Backup server row, and the switch-back card of a main waiting in standby.
 * The table, the card and the discovered list are live parts: /events sends
 * them again when they change (the Add Backup form in the row is preserved, so
 * what the operator types is never swapped away).
 */
import type { MachineStatus } from "../../core/status.ts";
import type { MachineRow } from "../../core/machine-rows.ts";
import type { RowOffer } from "../../core/machines-offers.ts";
import { PERMISSION_LEVELS, PERMISSION_WORDS } from "../../core/permissions.ts";
import type { DiscoveredList as DiscoveredListView, MachinesView } from "../view-models/machines-view.ts";
import { Layout } from "./layout.tsx";
import { RefusalNote } from "./refusal.tsx";

const gigabytes = (bytes: number) => `${(bytes / 1e9).toFixed(1)} GB`;

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

/** A labelled action in a row: a form that works without JavaScript, asks first, and is disabled with the reason below level 3. */
function LevelThreeActionForm(props: { action: string; target: string; confirm: string; allowed: boolean; label: string; text: string; refusal: string; testId: string; icon?: boolean }) {
  return (
    <form class="inline" method="post" action={props.action} hx-post={props.action} hx-target={props.target} hx-confirm={props.confirm}>
      <button type="submit" class={props.icon ? "danger" : "primary"} disabled={!props.allowed} aria-label={props.label} title={props.allowed ? props.label : props.refusal} data-testid={props.testId}>
        {props.icon ? <TrashIcon /> : null} {props.text}
      </button>
      {props.allowed ? null : <span class="reason">Needs permission level 3 (set on the main server).</span>}
    </form>
  );
}

function SwitchBackAction(props: { row: MachineRow; allowed: boolean }) {
  return (
    <LevelThreeActionForm
      action="/failover/switch-back"
      target="#switch-back-result"
      confirm="Switch the network back to the main server now? The backup stops serving once the main has copied its state."
      allowed={props.allowed}
      label={`Switch the network back from ${props.row.name} to the main server`}
      text="Switch back"
      refusal="Permission level 3 is needed to switch back"
      testId="client-switch-back"
    />
  );
}

function RemoveBackupAction(props: { row: MachineRow; allowed: boolean }) {
  return (
    <LevelThreeActionForm
      action="/machines/backup/remove"
      target="#backup-result"
      confirm={`Remove ${props.row.name} as the backup server? If the main fails after that, nothing takes over.`}
      allowed={props.allowed}
      label={`Remove the backup server ${props.row.name}`}
      text="Remove backup server"
      refusal="Permission level 3 is needed to remove the backup server"
      testId="remove-backup"
      icon
    />
  );
}

/**
 * Add Backup server, on the right of the Main server row: the backup's IP
 * address (a machine found on the network is proposed as the operator types)
 * and the button. `preserve`: drawn in the live table, where htmx keeps the
 * form the operator is using; the form's own answer replaces it (with the
 * reason it was refused and what was typed).
 */
export function AddBackupForm(props: { error?: string; value?: string; preserve?: boolean; fromClient?: boolean }) {
  return (
    <div id="add-backup" class="row-form" hx-preserve={props.preserve ? "true" : undefined}>
      <form hx-post="/machines/backup" hx-target="#add-backup" hx-swap="outerHTML" method="post" action="/machines/backup">
        <label for="backup-address">Backup server's IP address</label>
        <input id="backup-address" name="address" list="backup-candidates" value={props.value ?? ""} placeholder="10.0.0.2" autocomplete="off" aria-invalid={props.error ? "true" : undefined} />
        <button type="submit" class="primary" data-testid="add-backup" title={props.fromClient ? "The main server pairs with the backup you name." : undefined}>
          Add Backup server
        </button>
        {props.error ? (
          <p class="field-error" role="alert" data-testid="address-error">
            {props.error}
          </p>
        ) : null}
      </form>
    </div>
  );
}

/**
 * What Add Backup server answers once the main has paired: the result, above the table. It goes
 * there by the response's HX-Retarget, not into the form: the live table may already have
 * redrawn the row without the form (it offers Remove now), and htmx drops an answer whose target
 * is gone, so the operator never read that it worked.
 */
export function BackupAdded(props: { saved: string }) {
  return (
    <div id="backup-result">
      <p class="saved" role="status">
        {props.saved}
      </p>
    </div>
  );
}

/** The response headers that send BackupAdded to `#backup-result`. */
export const BACKUP_ADDED_HEADERS = { "HX-Retarget": "#backup-result", "HX-Reswap": "outerHTML" } as const;

function RowActions(props: { row: MachineRow; offers: readonly RowOffer[]; fromClient: boolean }) {
  const { row } = props;
  return (
    <>
      {props.offers.map((offer) =>
        offer.kind === "switch-back" ? (
          <SwitchBackAction row={row} allowed={offer.allowed} />
        ) : offer.kind === "add-backup" ? (
          <AddBackupForm preserve fromClient={props.fromClient} />
        ) : (
          <RemoveBackupAction row={row} allowed={offer.allowed} />
        ),
      )}
    </>
  );
}

export function MachinesTable(props: { view: MachinesView; outOfBand?: boolean }) {
  const { view } = props;
  const own = view.viewer.permission;
  return (
    // Morphed, not replaced: the table changes with every round trip, and a button replaced twice a second cannot be clicked.
    <section id="machines-table" class="card wide" hx-swap-oob={props.outOfBand ? "outerMorph" : undefined}>
      <h2>Machines</h2>
      {own !== null ? (
        <p class="lead" data-testid="own-permission">
          This machine has permission level {PERMISSION_WORDS[own]}
          {own === 1 ? ": other clients are not shown." : own === 2 ? ": it sees the other machines but does not change them." : "."}
        </p>
      ) : null}
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
            <th>Permission</th>
            <th></th>
          </tr>
        </thead>
        <tbody>
          {view.rows.map((r) => (
            <tr data-machine-id={r.id} data-role={r.kind} class={[r.self ? "self" : "", r.keyDiffers ? "mismatch" : "", r.alarm ?? "", r.unbackedClaims > 0 ? "claimant" : ""].join(" ").trim() || undefined}>
              <td>
                {r.name}
                {r.self ? <span class="tag">this machine</span> : null}
              </td>
              <td>{r.roleLabel}</td>
              <td>{r.address}</td>
              <td>{r.license}</td>
              <td>{r.fingerprint === null ? "–" : r.keyDiffers ? <strong class="field-error">Network key differs ({r.fingerprint})</strong> : <code>{r.fingerprint}</code>}</td>
              <td>
                {r.state}
                {r.unbackedClaims > 0 ? <strong class="field-error"> · {r.unbackedClaims} claims it cannot back</strong> : null}
              </td>
              <td class="num">{r.self ? "–" : formatDelay(r.delayMs)}</td>
              <td data-testid="permission">{r.level === null ? "–" : PERMISSION_WORDS[r.level]}</td>
              <td>
                <RowActions row={r} offers={view.offers.rows[r.id] ?? []} fromClient={view.offers.addBackupFromClient} />
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

/** Always present (maybe empty) so the live stream can fill it in or clear it. */
export function SwitchBackCard(props: { waiting: boolean; outOfBand?: boolean }) {
  const { waiting } = props;
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

/** On the main: each client's permission level, one small form per client (not live, so a choice is not swapped away). */
export function PermissionsCard(props: { view: MachinesView; saved?: string; error?: string }) {
  const clients = props.view.rows.filter((r) => r.kind === "client" && !r.self && r.level !== null);
  if (!props.view.offers.permissions) return <div id="permissions">{props.error ? <p class="field-error" role="alert" data-testid="permission-error">{props.error}</p> : null}</div>;
  return (
    <section id="permissions" class="card">
      <h2>Permission levels</h2>
      <p class="lead">1 sees only its own items · 2 sees the others read-only · 3 may change everything, add or remove the backup and switch back.</p>
      {props.saved ? <p class="saved" role="status">{props.saved}</p> : null}
      {props.error ? <p class="field-error" role="alert" data-testid="permission-error">{props.error}</p> : null}
      {clients.length === 0 ? (
        <p>No client heard yet.</p>
      ) : (
        clients.map((r) => (
          <form class="inline" method="post" action="/machines/permission" hx-post="/machines/permission" hx-target="#permissions" hx-swap="outerHTML">
            <input type="hidden" name="machine" value={r.id} />
            <label for={`level-${r.id}`}>{r.name}</label>
            <select id={`level-${r.id}`} name="level" data-testid={`level-${r.name}`}>
              {PERMISSION_LEVELS.map((l) => (
                <option value={String(l)} selected={r.level === l}>
                  {PERMISSION_WORDS[l]}
                </option>
              ))}
            </select>
            <button type="submit">Set</button>
          </form>
        ))
      )}
    </section>
  );
}

/** The backups found on the network, once each, at the address their peer port listens on; where this page may add one, a button per row. */
export function DiscoveredList(props: DiscoveredListView & { outOfBand?: boolean }) {
  return (
    <section id="discovered" class="card" hx-swap-oob={oob(props.outOfBand)}>
      <h2>Found on the network</h2>
      <datalist id="backup-candidates">
        {props.mayAdd ? props.machines.map((m) => (m.offered === null ? null : <option value={m.offered}>{m.name}</option>)) : null}
      </datalist>
      {props.discovery === "off" ? (
        <p>Discovery is off on this machine: type addresses instead.</p>
      ) : props.discovery === "standalone" ? (
        <p>A stand-alone machine does not look for others. Choose a role on the setup page.</p>
      ) : props.machines.length === 0 ? (
        <p>No backup server found yet. Typing an address always works.</p>
      ) : (
        <table data-testid="discovered-table">
          <thead>
            <tr>
              <th>Backup server</th>
              <th>Address</th>
              <th>Network key</th>
              <th>Version</th>
              <th></th>
            </tr>
          </thead>
          <tbody>
            {props.machines.map((m) => (
              <tr data-machine-id={m.id} class={m.keyMismatch ? "mismatch" : undefined}>
                <td>{m.name}</td>
                <td class="address">{m.addressText}</td>
                <td>{m.keyMismatch ? <strong class="field-error">Network key differs ({m.fingerprint})</strong> : "same key"}</td>
                <td>{m.version}</td>
                <td>
                  {m.note ? <span class="reason">{m.note}</span> : null}
                  {props.mayAdd && m.offered !== null ? (
                    <form class="inline" method="post" action="/machines/backup" hx-post="/machines/backup" hx-target="#add-backup" hx-swap="outerHTML">
                      <input type="hidden" name="address" value={m.offered} />
                      <button type="submit" data-testid="add-found-backup" aria-label={`Add ${m.name} at ${m.offered} as the backup server`}>
                        Add
                      </button>
                    </form>
                  ) : null}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

/** Why this machine is refused (both fingerprints), and the Asset Hub cache and free disk on main and backup. */
export function MachineNotes(props: { status: MachineStatus; outOfBand?: boolean }) {
  const { failover, storage } = props.status;
  return (
    <section id="machine-notes" hx-swap-oob={oob(props.outOfBand)}>
      <RefusalNote refusal={failover?.refusal} />
      {storage ? (
        <p data-testid="storage-status">
          Asset Hub cache:{" "}
          {(["main", "backup"] as const)
            .flatMap((server) => {
              const usage = storage[server];
              return usage ? [`${server} ${gigabytes(usage.cacheBytes)} (${gigabytes(usage.freeBytes)} free)`] : [];
            })
            .join("; ")}
          .{storage.warning ? <strong class="warning"> {storage.warning}</strong> : null}
        </p>
      ) : null}
    </section>
  );
}

/** The live parts of the Machines panel. */
export function MachinesLive(props: { view: MachinesView; outOfBand?: boolean }) {
  return (
    <>
      <SwitchBackCard waiting={props.view.offers.switchBackCard} outOfBand={props.outOfBand} />
      <MachinesTable view={props.view} outOfBand={props.outOfBand} />
      <MachineNotes status={props.view.status} outOfBand={props.outOfBand} />
      <DiscoveredList {...props.view.discovered} outOfBand={props.outOfBand} />
    </>
  );
}

/** A backup's own page: whom it is the backup of, and "Forget this main" for its operator. */
function PairedMainCard(props: { main: MachinesView["offers"]["pairedMain"] }) {
  const main = props.main;
  if (!main) return null;
  return (
    <section class="card wide" data-testid="paired-main">
      <p class="lead">
        Backup of {main.name} at {main.address}
      </p>
      <div id="forget-main-result"></div>
      <form method="post" action="/machines/main/forget" hx-post="/machines/main/forget" hx-target="#forget-main-result" hx-confirm={`Forget ${main.name}? This backup then follows no main until one pairs with it again.`}>
        <button type="submit" class="danger" data-testid="forget-main">
          Forget this main
        </button>
      </form>
    </section>
  );
}

export function MachinesPage(props: { view: MachinesView }) {
  return (
    <Layout title="Machines" bar={props.view.bar} panel="machines">
      <h1>Machines</h1>
      <div id="switch-back-result"></div>
      <div id="backup-result"></div>
      <SwitchBackCard waiting={props.view.offers.switchBackCard} />
      <PairedMainCard main={props.view.offers.pairedMain} />
      <MachinesTable view={props.view} />
      <MachineNotes status={props.view.status} />
      <div class="columns">
        <PermissionsCard view={props.view} />
        <DiscoveredList {...props.view.discovered} />
      </div>
    </Layout>
  );
}
