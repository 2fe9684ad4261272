/** @jsxImportSource hono/jsx */
/**
 * The Synced storage panel: where the show file stands, whether push and
 * pull work now (not while the backup serves, with the documented reason),
 * and its last revisions. Folders are pushed and pulled with
 * `understudy push` / `understudy pull` through this machine.
 */
import type { MachineStatus } from "../src/core/status.ts";
import type { LogEntry } from "../src/services/show-file-protocol.ts";
import { READ_ONLY_MESSAGE } from "../src/services/show-file-protocol.ts";
import { Layout } from "./layout.tsx";

export type StorageHistory = { entries: LogEntry[]; readOnly: boolean } | { error: string } | null;

/** Push and pull wait for the main while the backup serves (DESIGN.md "While the backup is active"). */
export function backupServes(s: MachineStatus): boolean {
  const active = s.failover?.activeServer ?? null;
  return active === "backup" || (active === "self" && s.role === "backup");
}

export function StorageStatus(props: { status: MachineStatus; outOfBand?: boolean }) {
  const s = props.status;
  const readOnly = backupServes(s);
  return (
    <section id="storage-status" class={`card wide${readOnly ? " attention" : ""}`} hx-swap-oob={props.outOfBand ? "true" : undefined}>
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
              Push and pull work: <code>understudy push FOLDER -m "comment"</code> sends your changes, <code>understudy pull FOLDER</code> fetches all changes.
            </p>
          )}
        </>
      )}
    </section>
  );
}

export function StorageHistoryCard(props: { history: StorageHistory }) {
  const h = props.history;
  return (
    <section id="storage-history" class="card wide">
      <h2>History</h2>
      {h === null ? (
        <p>–</p>
      ) : "error" in h ? (
        <p class="field-error">{h.error}</p>
      ) : h.entries.length === 0 ? (
        <p>{h.readOnly ? "The history is shown again once the main server is back." : "No changes pushed yet."}</p>
      ) : (
        <table data-testid="storage-history">
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
            {h.entries.map((e) => (
              <tr>
                <td class="num">{e.rev}</td>
                <td>{e.created.replace("T", " ").slice(0, 19)}</td>
                <td>{e.author}</td>
                <td>{e.message}</td>
                <td class="num">{e.files}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

export function StoragePage(props: { status: MachineStatus; history: StorageHistory }) {
  return (
    <Layout title="Synced storage" status={props.status} panel="storage">
      <h1>Synced storage</h1>
      <StorageStatus status={props.status} />
      <StorageHistoryCard history={props.history} />
    </Layout>
  );
}
