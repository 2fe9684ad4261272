/** @jsxImportSource hono/jsx */
/**
 * The Health panel: per backup group each engine's state, when it was last
 * heard, its frame counter, the route in force on each destination as the
 * router reports it and the destination's lock (a locked destination is shown
 * before any failure: its failover would not happen); switch buttons on the
 * active server's own page.
 */
import type { EngineRow, HealthView } from "../view-models/health-view.ts";
import { Layout } from "./layout.tsx";

const LOCK_WORDS = { O: "locked by understudy", L: "LOCKED by another client: failover cannot switch it", U: "unlocked" } as const;

function Row(props: { row: EngineRow; groupId: string; refusal: string | null }) {
  const r = props.row;
  return (
    <tr data-machine-id={r.id} data-testid="engine-row" class={r.failed ? "attention" : undefined}>
      <td>{r.name}</td>
      <td>{r.role}</td>
      <td class="engine-state" data-testid="engine-state">{r.line}</td>
      <td>{r.lastHeardMsAgo === null ? "never" : `${(r.lastHeardMsAgo / 1000).toFixed(1)} s ago`}</td>
      <td class="num">{r.frames ?? "–"}</td>
      <td data-testid="engine-routes">
        {r.outputs.map((o) => (
          <div>
            <span class="route">
              Destination {o.destination} ← source {o.onAir ?? "?"}
            </span>
            {o.lock ? <span class={o.lock === "L" ? "lock field-error" : "lock"}>{LOCK_WORDS[o.lock]}</span> : null}
          </div>
        ))}
      </td>
      <td>
        {r.offer !== null && props.refusal === null ? (
          <form method="post" action="/health/switch">
            <input type="hidden" name="group" value={props.groupId} />
            <input type="hidden" name="main" value={r.id} />
            <input type="hidden" name="to" value={r.offer} />
            <button type="submit" data-testid={`switch-to-${r.offer}`}>
              {r.offer === "backup" ? "Switch to backup" : "Back to main"}
            </button>
          </form>
        ) : null}
      </td>
    </tr>
  );
}

/** The part the live stream renders again (everything but the last switch's answer). */
export function HealthLive(props: { view: HealthView; outOfBand?: boolean }) {
  const { view } = props;
  const w = view.watch;
  return (
    <section id="health-live" hx-swap-oob={props.outOfBand ? "true" : undefined}>
      {w === null ? (
        <p data-testid="health-elsewhere">The servers watch the render engines: open the Health panel of the server that serves the network.</p>
      ) : (
        <>
          <p data-testid="health-router">
            {!w.active
              ? "This server does not serve the network now: the server that serves switches the router."
              : w.router === null
                ? "No video router is enabled: set it on the Backup groups panel."
                : `Router ${w.router}: ${w.connected ? "connected" : "not connected"}.`}
          </p>
          {w.warnings.map((message) => (
            <p class="field-error" role="alert" data-testid="health-warning">
              {message}
            </p>
          ))}
          {w.groups.length === 0 ? <p>No backup groups: create one on the Backup groups panel.</p> : null}
          {w.groups.map((g) => (
            <section class="card wide" data-testid="health-group" data-group-id={g.id}>
              <h2>{g.name}</h2>
              <table>
                <thead>
                  <tr>
                    <th>Engine</th>
                    <th>Is</th>
                    <th>State</th>
                    <th>Last heard</th>
                    <th class="num">Frames</th>
                    <th>Route in force (as the router reports it)</th>
                    <th></th>
                  </tr>
                </thead>
                <tbody>
                  {g.rows.map((r) => (
                    <Row row={r} groupId={g.id} refusal={view.switchRefusal} />
                  ))}
                </tbody>
              </table>
            </section>
          ))}
          {view.switchRefusal ? <p class="reason">{view.switchRefusal}</p> : null}
        </>
      )}
    </section>
  );
}

export function HealthPage(props: { view: HealthView; message?: { ok: boolean; text: string } }) {
  const { view } = props;
  return (
    <Layout title="Health" bar={view.bar} panel="health">
      <h1>Health</h1>
      {props.message ? (
        <p class={props.message.ok ? "saved" : "field-error"} role="status" data-testid="health-message">
          {props.message.text}
        </p>
      ) : null}
      <HealthLive view={view} />
    </Layout>
  );
}
