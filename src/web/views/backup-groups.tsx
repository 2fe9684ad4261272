/** @jsxImportSource hono/jsx */
/**
 * The Backup groups panel: every group of render engines (main engines, the
 * backup engine, per engine its router sources and the destinations they
 * feed, the router and the failover mode), a form to create or edit one and a
 * delete button per group. Read-only, with the reason, where this page may not
 * change them. Each form posts to the page and gets the page back with the
 * refusal beside its field; it works without JavaScript.
 */
import { MAIN_ROWS } from "../../core/backup-group-offers.ts";
import { engineName, formValuesOf, portsText, type BackupGroup, type BackupGroupsView, type GroupFormEcho } from "../view-models/backup-groups-view.ts";
import { Layout } from "./layout.tsx";

function FieldError(props: { echo: GroupFormEcho; field: string }) {
  const message = props.echo.errors?.[props.field];
  return message ? (
    <p class="field-error" role="alert" data-testid={`group-error-${props.field}`}>
      {message}
    </p>
  ) : null;
}

function MachineSelect(props: { view: BackupGroupsView; name: string; value: string; optional: boolean; disabled: boolean }) {
  return (
    <select id={props.name} name={props.name} disabled={props.disabled} data-testid={`group-${props.name}`}>
      <option value="">{props.optional ? "(none)" : "Choose a machine"}</option>
      {props.view.machines.map((m) => (
        <option value={m.id} selected={m.id === props.value}>
          {m.name}
        </option>
      ))}
    </select>
  );
}

function GroupTable(props: { view: BackupGroupsView; group: BackupGroup }) {
  const { view, group: g } = props;
  return (
    <section class="card wide backup-group" data-testid="backup-group" data-group-id={g.id}>
      <h2>{g.name}</h2>
      <p>
        Failover {g.failoverMode === "auto" ? "automatic" : "manual"} · switch back {g.switchBack === "auto" ? `automatically after ${Math.round(g.holdTimeMs / 1000)} s healthy` : "by hand"}
      </p>
      {(view.warnings[g.id] ?? []).map((w) => (
        <p class="field-error" role="alert" data-testid="group-warning">
          {w}
        </p>
      ))}
      <table>
        <thead>
          <tr>
            <th>Engine</th>
            <th>Is</th>
            <th>Router sources</th>
            <th>Feeds destinations</th>
          </tr>
        </thead>
        <tbody>
          {g.mains.map((m) => (
            <tr data-machine-id={m.machineId}>
              <td>{engineName(view, m.machineId)}</td>
              <td>main</td>
              <td>{portsText(m.outputs.map((o) => o.source))}</td>
              <td>{portsText(m.outputs.map((o) => o.destination))}</td>
            </tr>
          ))}
          <tr data-machine-id={g.backup.machineId}>
            <td>{engineName(view, g.backup.machineId)}</td>
            <td>backup</td>
            <td>{portsText(g.backup.sources)}</td>
            <td>the failed main's</td>
          </tr>
        </tbody>
      </table>
      {view.editRefusal === null ? (
        <p>
          <a href={`/backup-groups?edit=${g.id}`} data-testid="edit-group">
            Edit
          </a>{" "}
          <form method="post" action="/backup-groups/delete" class="inline" onsubmit="return confirm('Delete this backup group? Its engines are no longer backed up.')">
            <input type="hidden" name="id" value={g.id} />
            <button type="submit" class="danger" data-testid="delete-group">
              Delete
            </button>
          </form>
        </p>
      ) : null}
    </section>
  );
}

/** The setup's one video router: its address and "Enable Videohub connection". */
export function RouterCard(props: { view: BackupGroupsView; echo: GroupFormEcho }) {
  const { view, echo } = props;
  const r = view.router;
  const v = echo.values ?? (r ? { router: r.address, ...(r.enabled ? { routerEnabled: "on" } : {}) } : {});
  return (
    <section id="router-card" class="card wide">
      <h2>Video router</h2>
      <p>A Blackmagic Videohub by IP (Ethernet protocol, port 9990). Make sure the routed inputs and outputs are not locked!</p>
      {view.editRefusal !== null ? (
        <>
          <p data-testid="router-setting">{r ? `${r.address} · ${r.enabled ? "Videohub connection enabled" : "Videohub connection off"}` : "No router set."}</p>
          <FieldError echo={echo} field="router" />
        </>
      ) : (
        <form method="post" action="/backup-groups/router" data-testid="router-form">
          <label for="router">Router IP address</label>
          <div class="group-row">
            <input id="router" name="router" value={v.router ?? ""} placeholder="10.0.0.50 (port 9990)" autocomplete="off" data-testid="group-router" />
            <button type="submit" formaction="/backup-groups/router/test" data-testid="test-router">
              Test connection
            </button>
          </div>
          <FieldError echo={echo} field="router" />
          {echo.tested ? (
            <p class={echo.tested.ok ? "saved" : "field-error"} role="status" data-testid="router-test">
              {echo.tested.text}
            </p>
          ) : null}
          <label>
            <input type="checkbox" name="routerEnabled" value="on" checked={v.routerEnabled === "on"} data-testid="group-routerEnabled" /> Enable Videohub connection
          </label>
          <FieldError echo={echo} field="routerEnabled" />
          <button type="submit" data-testid="save-router">
            Save router
          </button>
          {echo.saved ? (
            <p class="saved" role="status" data-testid="router-saved">
              {echo.saved}
            </p>
          ) : null}
        </form>
      )}
    </section>
  );
}

/** Create or edit one group; `values` are what was typed (or the group being edited). */
export function GroupForm(props: { view: BackupGroupsView; echo: GroupFormEcho }) {
  const { view, echo } = props;
  const v = echo.values ?? {};
  const editing = (v.id ?? "") !== "";
  return (
    <section id="group-form" class="card wide">
      <h2>{editing ? `Edit backup group ${v.name ?? ""}` : "Create backup group"}</h2>
      <form method="post" action="/backup-groups" data-testid="group-form">
        <input type="hidden" name="id" value={v.id ?? ""} />
        <label for="name">Name</label>
        <input id="name" name="name" value={v.name ?? ""} placeholder="Green" autocomplete="off" data-testid="group-name" />
        <FieldError echo={echo} field="name" />
        <fieldset>
          <legend>Main engines: each router source and the destination it feeds (ports counted from 1, as on the router)</legend>
          {Array.from({ length: MAIN_ROWS }, (_, i) => (
            <div class="group-row">
              <MachineSelect view={view} name={`main${i}`} value={v[`main${i}`] ?? ""} optional={i > 0} disabled={false} />
              <input name={`main${i}Sources`} value={v[`main${i}Sources`] ?? ""} placeholder="sources: 1, 2" aria-label={`Main engine ${i + 1}: router sources`} data-testid={`group-main${i}Sources`} />
              <input name={`main${i}Destinations`} value={v[`main${i}Destinations`] ?? ""} placeholder="destinations: 5, 6" aria-label={`Main engine ${i + 1}: destinations`} data-testid={`group-main${i}Destinations`} />
              <FieldError echo={echo} field={`main${i}`} />
              <FieldError echo={echo} field={`main${i}Sources`} />
              <FieldError echo={echo} field={`main${i}Destinations`} />
            </div>
          ))}
          <FieldError echo={echo} field="destinations" />
        </fieldset>
        <fieldset>
          <legend>Backup engine and its router sources (as many as a main's)</legend>
          <div class="group-row">
            <MachineSelect view={view} name="backup" value={v.backup ?? ""} optional={false} disabled={false} />
            <input name="backupSources" value={v.backupSources ?? ""} placeholder="sources: 9, 10" aria-label="Backup engine: router sources" data-testid="group-backupSources" />
          </div>
          <FieldError echo={echo} field="backup" />
          <FieldError echo={echo} field="backupSources" />
        </fieldset>
        <fieldset>
          <legend>Failover</legend>
          <label>
            <input type="radio" name="mode" value="auto" checked={(v.mode ?? "auto") === "auto"} /> Automatic
          </label>
          <label>
            <input type="radio" name="mode" value="manual" checked={v.mode === "manual"} data-testid="group-mode-manual" /> Manual (switch on the Health panel)
          </label>
          <FieldError echo={echo} field="mode" />
          <label>
            <input type="radio" name="switchBack" value="auto" checked={(v.switchBack ?? "auto") === "auto"} /> Switch back by itself
          </label>
          <label>
            <input type="radio" name="switchBack" value="manual" checked={v.switchBack === "manual"} data-testid="group-switchBack-manual" /> Switch back by hand
          </label>
          <FieldError echo={echo} field="switchBack" />
          <label for="holdSeconds">Switch back after the main engine is healthy for (seconds)</label>
          <input id="holdSeconds" name="holdSeconds" value={v.holdSeconds ?? "10"} inputmode="numeric" data-testid="group-holdSeconds" />
          <FieldError echo={echo} field="holdSeconds" />
        </fieldset>
        <FieldError echo={echo} field="form" />
        <button type="submit" class="primary" data-testid="save-group">
          {editing ? "Save backup group" : "Create backup group"}
        </button>
        {echo.saved ? (
          <p class="saved" role="status" data-testid="group-saved">
            {echo.saved}
          </p>
        ) : null}
      </form>
    </section>
  );
}

export function BackupGroupsPage(props: { view: BackupGroupsView; echo?: GroupFormEcho; routerEcho?: GroupFormEcho; editing?: BackupGroup | null }) {
  const { view } = props;
  const echo = props.echo ?? (props.editing ? { values: formValuesOf(props.editing) } : {});
  const groups = view.groups;
  return (
    <Layout title="Backup groups" bar={view.bar} panel="backup-groups">
      <h1>Backup groups</h1>
      <p class="lead">Each render engine is paired with a backup engine: when a main engine fails, the video router puts the backup's output on air.</p>
      <RouterCard view={view} echo={props.routerEcho ?? {}} />
      {"error" in groups ? (
        <p class="field-error" role="alert" data-testid="groups-unreadable">
          {groups.error}
        </p>
      ) : groups.length === 0 ? (
        <p data-testid="no-groups">No backup groups yet.</p>
      ) : (
        groups.map((g) => <GroupTable view={view} group={g} />)
      )}
      {view.editRefusal === null ? (
        <GroupForm view={view} echo={echo} />
      ) : (
        <p class="reason" data-testid="groups-read-only">
          {view.editRefusal}
        </p>
      )}
      {echo.saved && view.editRefusal !== null ? <p class="saved">{echo.saved}</p> : null}
    </Layout>
  );
}
