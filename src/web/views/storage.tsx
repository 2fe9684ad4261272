/** @jsxImportSource hono/jsx */
/**
 * The Synced storage panel: this machine's show folder, "Your changes to
 * push" and "All changes to pull", Push Changes with a comment, Pull, the
 * Auto-Pull switch and the show file's history. Push, Pull and Auto-Pull are
 * disabled while the backup serves, with the documented reason.
 *
 * The lists, the progress and the buttons are live parts (sent again by
 * /events when they change); the folder field and the comment are not, so
 * nothing being typed is ever swapped away.
 */
import type { MachineStatus } from "../../core/status.ts";
import { READ_ONLY_MESSAGE } from "../../core/storage-offers.ts";
import type { FormEcho, LogEntry, StorageHistory, StorageView, SyncJob } from "../view-models/storage-view.ts";
import { Layout } from "./layout.tsx";

const oob = (on: boolean | undefined) => (on ? "true" : undefined);
const when = (iso: string) => iso.replace("T", " ").slice(0, 19);

export function StorageStatus(props: { status: MachineStatus; readOnly: boolean; outOfBand?: boolean }) {
  const { status: s, readOnly } = props;
  return (
    <section id="storage-status" class={`card wide${readOnly ? " attention" : ""}`} hx-swap-oob={oob(props.outOfBand)}>
      <h2>Show file</h2>
      {s.failover === null ? (
        <p>A stand-alone machine has no synced storage. Make it a client or a server on the setup page.</p>
      ) : (
        <>
          {s.showFile ? (
            <p>
              Revision <strong data-testid="show-file-head">{s.showFile.head}</strong> on this server.
            </p>
          ) : (
            <p>The main server holds the show file; this machine pushes and pulls through it.</p>
          )}
          {readOnly ? (
            <p class="field-error" role="status" data-testid="storage-read-only">
              {READ_ONLY_MESSAGE}.
            </p>
          ) : (
            <p data-testid="storage-open">
              Push and pull work: here, or from a terminal with <code>understudy push FOLDER -m "comment"</code> and <code>understudy pull FOLDER</code>.
            </p>
          )}
        </>
      )}
    </section>
  );
}

/** The show folder: a form, or read-only with the flag that fixed it. Not live (it holds what is being typed). */
export function FolderCard(props: { view: StorageView; echo?: FormEcho }) {
  const { sync, pinned } = props.view;
  const echo = props.echo ?? {};
  if (sync === null) return <section id="folder-card"></section>;
  return (
    <section id="folder-card" class="card wide">
      <h2>Show folder</h2>
      {pinned.folder ? (
        <>
          <p>
            <code data-testid="show-folder">{sync.folder}</code>
          </p>
          <p class="pinned">Set by --show-folder on the command line: change it there and restart.</p>
          {echo.error ? (
            <p class="field-error" role="alert" data-testid="folder-error">
              {echo.error}
            </p>
          ) : null}
        </>
      ) : (
        <form method="post" action="/storage/folder" hx-post="/storage/folder" hx-target="#folder-card" hx-swap="outerHTML">
          <label for="folder">The folder of show files on this machine (its full path)</label>
          <input
            id="folder"
            name="folder"
            value={echo.value ?? sync.folder ?? ""}
            placeholder="/srv/show or D:\show"
            autocomplete="off"
            spellcheck={false}
            aria-invalid={echo.error ? "true" : undefined}
            data-testid="show-folder-input"
          />
          {echo.error ? (
            <p class="field-error" role="alert" data-testid="folder-error">
              {echo.error}
            </p>
          ) : null}
          <button type="submit">Use this folder</button>
          {echo.saved ? <p class="saved" role="status">{echo.saved}</p> : null}
        </form>
      )}
    </section>
  );
}

function JobProgress(props: { job: SyncJob }) {
  const { job } = props;
  const percent = job.total > 0 ? Math.floor((job.done / job.total) * 100) : null;
  return (
    <p role="status" data-testid="sync-progress">
      {job.auto ? "Auto-Pull" : job.kind === "push" ? "Pushing" : "Pulling"}: {job.stage}
      {percent === null ? "…" : ` ${percent} %`} <progress max={job.total || 1} value={job.total > 0 ? job.done : undefined}></progress>
    </p>
  );
}

/** Progress or outcome, the two lists, and why the folder cannot be used. Live. */
export function SyncLists(props: { view: StorageView; outOfBand?: boolean }) {
  const { sync } = props.view;
  if (sync === null) return <section id="storage-sync" hx-swap-oob={oob(props.outOfBand)}></section>;
  const base = sync.base;
  return (
    <section id="storage-sync" class="columns" hx-swap-oob={oob(props.outOfBand)}>
      <div class="card">
        <h2>Your changes to push</h2>
        {sync.job ? <JobProgress job={sync.job} /> : null}
        {!sync.job && sync.outcome ? (
          <p class={sync.outcome.ok ? "saved" : "field-error"} role="status" data-testid="sync-outcome">
            {sync.outcome.message}
          </p>
        ) : null}
        {sync.folder === null ? (
          <p>Set the show folder to see what changed in it.</p>
        ) : sync.problem !== null ? (
          <p class="field-error" data-testid="folder-problem">
            {sync.problem}
          </p>
        ) : sync.toPush === null ? (
          <p>Looking at the folder…</p>
        ) : sync.toPush.length === 0 ? (
          <p data-testid="nothing-to-push">Nothing changed since revision {base}.</p>
        ) : (
          <>
            <p class="lead">Added, changed and deleted since revision {base} (files matched by .understudyignore are left out).</p>
            <table data-testid="changes-to-push">
              <tbody>
                {sync.toPush.map((c) => (
                  <tr data-kind={c.kind}>
                    <td>{c.kind}</td>
                    <td>
                      <code>{c.path}</code>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
            {sync.toPushCount > sync.toPush.length ? <p>… and {sync.toPushCount - sync.toPush.length} more.</p> : null}
          </>
        )}
        {sync.skipped ? <p class="reason">{sync.skipped}</p> : null}
      </div>
      <div class="card">
        <h2>All changes to pull</h2>
        {sync.unreachable ? <p class="field-error">{sync.unreachable}</p> : null}
        {sync.folder === null || base === null ? (
          <p>Set the show folder to see what it lacks.</p>
        ) : sync.toPull.length === 0 ? (
          <p data-testid="nothing-to-pull">{sync.head === null ? "–" : `The folder is at the latest revision (${base}).`}</p>
        ) : (
          <>
            <p class="lead">
              Revisions after the folder's revision {base}, newest first{sync.head !== null && sync.head - base > sync.toPull.length ? ` (the newest ${sync.toPull.length} of ${sync.head - base})` : ""}.
            </p>
            <RevisionTable entries={sync.toPull} testid="changes-to-pull" />
          </>
        )}
      </div>
    </section>
  );
}

/** Push Changes: the comment (static, never swapped) and the button (live). */
export function PushForm(props: { view: StorageView; echo?: FormEcho }) {
  const echo = props.echo ?? {};
  if (props.view.sync === null) return <section id="push-form"></section>;
  return (
    <section id="push-form" class="card">
      <h2>Push Changes</h2>
      <form method="post" action="/storage/push" hx-post="/storage/push" hx-target="#push-form" hx-swap="outerHTML">
        <label for="comment">Comment: what changed (everyone sees it in the history)</label>
        <input id="comment" name="comment" value={echo.value ?? ""} maxlength={1000} autocomplete="off" aria-invalid={echo.error ? "true" : undefined} data-testid="push-comment" />
        {echo.error ? (
          <p class="field-error" role="alert" data-testid="push-error">
            {echo.error}
          </p>
        ) : null}
        <PushControls view={props.view} />
        {echo.saved ? <p class="saved" role="status">{echo.saved}</p> : null}
      </form>
    </section>
  );
}

function Blocked(props: { reason: string | null; testid: string }) {
  return props.reason === null ? null : (
    <span class="reason" data-testid={props.testid}>
      {props.reason}
    </span>
  );
}

export function PushControls(props: { view: StorageView; outOfBand?: boolean }) {
  const blocked = props.view.offers.push;
  return (
    <span id="push-controls" hx-swap-oob={oob(props.outOfBand)}>
      <button type="submit" class="primary" disabled={blocked !== null} data-testid="push-changes">
        Push Changes
      </button>{" "}
      <Blocked reason={blocked} testid="push-blocked" />
    </span>
  );
}

/** Pull now, and the Auto-Pull switch. Live. */
export function PullControls(props: { view: StorageView; echo?: FormEcho; outOfBand?: boolean }) {
  const { sync } = props.view;
  if (sync === null) return <section id="pull-controls" hx-swap-oob={oob(props.outOfBand)}></section>;
  const blocked = props.view.offers.pull;
  const on = sync.autoPull;
  const switchBlocked = props.view.offers.autoPull;
  const echo = props.echo ?? {};
  return (
    <section id="pull-controls" class="card" hx-swap-oob={oob(props.outOfBand)}>
      <h2>Pull</h2>
      <form method="post" action="/storage/pull" hx-post="/storage/pull" hx-target="#pull-controls" hx-swap="outerHTML">
        <button type="submit" disabled={blocked !== null} data-testid="pull">
          Pull all changes
        </button>{" "}
        <Blocked reason={blocked} testid="pull-blocked" />
      </form>
      <form method="post" action="/storage/auto-pull" hx-post="/storage/auto-pull" hx-target="#pull-controls" hx-swap="outerHTML">
        <input type="hidden" name="autoPull" value={on ? "off" : "on"} />
        <button type="submit" class="switch" role="switch" aria-checked={on ? "true" : "false"} disabled={switchBlocked !== null} data-testid="auto-pull">
          Auto-Pull: {on ? "on" : "off"}
        </button>{" "}
        <span class="reason">{switchBlocked ?? (on ? "Every new revision is pulled into the folder as it arrives." : "Turn it on to pull every new revision as it arrives.")}</span>
      </form>
      {echo.error ? (
        <p class="field-error" role="alert" data-testid="pull-error">
          {echo.error}
        </p>
      ) : null}
      {echo.saved ? <p class="saved" role="status">{echo.saved}</p> : null}
    </section>
  );
}

function RevisionTable(props: { entries: LogEntry[]; testid: string }) {
  return (
    <table data-testid={props.testid}>
      <thead>
        <tr>
          <th class="num">Revision</th>
          <th>When (UTC)</th>
          <th>Who</th>
          <th>Comment</th>
          <th class="num">Files</th>
        </tr>
      </thead>
      <tbody>
        {props.entries.map((e) => (
          <tr>
            <td class="num">{e.rev}</td>
            <td>{when(e.created)}</td>
            <td>{e.author}</td>
            <td>{e.message}</td>
            <td class="num">{e.files}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

export function StorageHistoryCard(props: { history: StorageHistory; outOfBand?: boolean }) {
  const h = props.history;
  return (
    <section id="storage-history" class="card wide" hx-swap-oob={oob(props.outOfBand)}>
      <h2>History</h2>
      {h === null ? (
        <p>–</p>
      ) : "error" in h ? (
        <p class="field-error">{h.error}</p>
      ) : h.entries.length === 0 ? (
        <p>{h.readOnly ? "The history is shown again once the main server is back." : "No changes pushed yet."}</p>
      ) : (
        <RevisionTable entries={h.entries} testid="storage-history" />
      )}
    </section>
  );
}

/** The panel's live parts, each swapped out of band by its id; the history only once the node has heard it. */
export function StorageLive(props: { view: StorageView }) {
  const { view } = props;
  return (
    <>
      <StorageStatus status={view.status} readOnly={view.offers.readOnly} outOfBand />
      <SyncLists view={view} outOfBand />
      <PushControls view={view} outOfBand />
      <PullControls view={view} outOfBand />
      {view.sync?.history ? <StorageHistoryCard history={{ entries: view.sync.history, readOnly: false }} outOfBand /> : null}
    </>
  );
}

export function StoragePage(props: { view: StorageView; folder?: FormEcho; push?: FormEcho; pull?: FormEcho }) {
  const { view } = props;
  return (
    <Layout title="Synced storage" bar={view.bar} panel="storage">
      <h1>Synced storage</h1>
      <StorageStatus status={view.status} readOnly={view.offers.readOnly} />
      <FolderCard view={view} echo={props.folder} />
      <SyncLists view={view} />
      <div class="columns">
        <PushForm view={view} echo={props.push} />
        <PullControls view={view} echo={props.pull} />
      </div>
      <StorageHistoryCard history={view.history} />
    </Layout>
  );
}
