/** @jsxImportSource hono/jsx */
/**
 * The Status, Delays and Routing panels. Each has one live part (an id the
 * live stream swaps out of band) and is readable without JavaScript.
 */
import type { PeerDelayHistory } from "../../core/status-history.ts";
import { SLOW_RTT_MS, SLOW_WINDOW_SAMPLES, type DelayVerdict } from "../../core/delay-verdict.ts";
import type { HubOfMachine } from "../../core/machine-rows.ts";
import type { DelaysView, RoutingView, StatusPanelView } from "../view-models/panels-view.ts";
import { Layout } from "./layout.tsx";
import { formatDelay } from "./machines.tsx";

const oob = (on: boolean | undefined) => (on ? "true" : undefined);

export function StatusFacts(props: { view: StatusPanelView; outOfBand?: boolean }) {
  const s = props.view.status;
  const f = s.failover;
  const history = props.view.history;
  const words = props.view.words;
  const last = history.last;
  return (
    <section id="status-facts" class="card wide" hx-swap-oob={oob(props.outOfBand)}>
      <dl class="facts" data-testid="status-facts">
        <dt>This machine</dt>
        <dd>
          {s.name} · {s.roleLabel} · {s.peerListen ?? "not on the network"} · id <code>{s.id}</code>
        </dd>
        <dt>Status</dt>
        <dd>{props.view.bar.chip.text}</dd>
        <dt>Active server</dt>
        <dd data-testid="active-server">{words.activeServer}</dd>
        <dt>Epoch</dt>
        <dd data-testid="epoch">{f ? f.epoch : "–"}</dd>
        <dt>Show file revision</dt>
        <dd>{s.showFile ? s.showFile.head : "held by the main server"}</dd>
        <dt>Lane: show file and assets</dt>
        <dd>{words.backupCopy}</dd>
        <dt>Lane: Data Hub state</dt>
        <dd>{words.hubCopy}</dd>
        <dt>Backup's lag (entries)</dt>
        <dd data-testid="lane-lag">{words.laneLag}</dd>
        <dt>Data Hub</dt>
        <dd>
          {f ? (f.hubConnected ? "linked" : "not linked") : "–"}
          {f && f.queued > 0 ? `, ${f.queued} messages waiting` : ""}
        </dd>
        <dt>Last failover</dt>
        <dd data-testid="last-failover">
          {last
            ? `${last.at.replace("T", " ").slice(0, 19)} UTC: the ${last.server} server took over. ${last.why}`
            : `none recorded (${history.failovers} failovers, ${history.failbacks} failbacks)`}
        </dd>
      </dl>
    </section>
  );
}

/** The last minute as a small line (oldest left); gaps where the peer was not heard. */
export function DelaySparkline(props: { peer: PeerDelayHistory; width?: number; height?: number }) {
  const width = props.width ?? 240;
  const height = props.height ?? 40;
  const samples = props.peer.samples;
  const top = Math.max(props.peer.worstMs ?? 0, 1);
  const step = width / Math.max(samples.length - 1, 1);
  const segments: string[][] = [[]];
  samples.forEach((v, i) => {
    if (v === null) {
      if (segments.at(-1)!.length) segments.push([]);
      return;
    }
    segments.at(-1)!.push(`${(i * step).toFixed(1)},${(height - 2 - (v / top) * (height - 4)).toFixed(1)}`);
  });
  return (
    <svg class="sparkline" width={width} height={height} viewBox={`0 0 ${width} ${height}`} role="img" aria-label={`Round trip over the last minute, worst ${formatDelay(props.peer.worstMs)}`}>
      {segments
        .filter((points) => points.length > 0)
        .map((points) => (points.length === 1 ? <circle cx={points[0]!.split(",")[0]} cy={points[0]!.split(",")[1]} r="2" /> : <polyline points={points.join(" ")} fill="none" />))}
    </svg>
  );
}

/** "Round trip now": a machine not heard says so in red instead of its last round trip; a slow one says how slow it stays. */
function DelayNow(props: { verdict: DelayVerdict }) {
  const v = props.verdict;
  if (v.kind === "not-heard") return <strong class="dead-text">{v.silentS === null ? "not heard" : `not heard for ${v.silentS} s`}</strong>;
  if (v.kind === "ok") return <>{formatDelay(v.nowMs)}</>;
  if (v.kind === "isolated") return <>{formatDelay(v.nowMs)} <strong class="dead-text">isolated</strong></>;
  return (
    <>
      {formatDelay(v.nowMs)} <strong class="field-error">slow (typically {formatDelay(v.typicalMs)})</strong>
    </>
  );
}

export function DelayTable(props: { view: DelaysView; outOfBand?: boolean }) {
  return (
    <section id="delay-table" class="card wide" hx-swap-oob={oob(props.outOfBand)}>
      {props.view.status.failover === null ? (
        <p>A stand-alone machine talks to no one.</p>
      ) : props.view.rows.length === 0 ? (
        <p>No other machine heard yet.</p>
      ) : (
        <table data-testid="delay-table">
          <thead>
            <tr>
              <th>Machine</th>
              <th>Role</th>
              <th class="num">Round trip now</th>
              <th class="num">Worst, last minute</th>
              <th>Last minute</th>
            </tr>
          </thead>
          <tbody>
            {props.view.rows.map(({ peer: p, roleLabel, verdict }) => {
              return (
                <tr data-machine-id={p.id} data-delay={verdict.kind} class={verdict.kind === "ok" ? undefined : verdict.kind}>
                  <td>{p.name}</td>
                  <td>{roleLabel}</td>
                  <td class="num">
                    <DelayNow verdict={verdict} />
                  </td>
                  <td class="num">{formatDelay(p.worstMs)}</td>
                  <td>
                    <DelaySparkline peer={p} />
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
    </section>
  );
}

/** Whose Data Hub a machine's apps reach (core/machine-rows.ts decides), in words. */
const HUB_WORDS: Record<HubOfMachine, string> = {
  own: "its own (serving)",
  main: "the main server's",
  backup: "the backup server's",
  waits: "none: its apps' messages wait",
  isolated: "none: it holds writes while isolated",
  none: "none",
  standalone: "none (stand-alone)",
  "not-heard": "not heard",
  unknown: "–",
};

export function RoutingTable(props: { view: RoutingView; outOfBand?: boolean }) {
  return (
    <section id="routing-table" class="card wide" hx-swap-oob={oob(props.outOfBand)}>
      <table data-testid="routing-table">
        <thead>
          <tr>
            <th>Machine</th>
            <th>Role</th>
            <th>Data Hub it is on</th>
            <th class="num">Local apps connected</th>
          </tr>
        </thead>
        <tbody>
          {props.view.rows.map((r) => (
            <tr data-machine-id={r.id} class={r.alarm ?? undefined}>
              <td>{r.name}</td>
              <td>{r.roleLabel}</td>
              <td>{HUB_WORDS[r.hub]}</td>
              <td class="num">{r.localApps ?? "–"}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

export function StatusPage(props: { view: StatusPanelView }) {
  return (
    <Layout title="Status" bar={props.view.bar} panel="status">
      <h1>Status</h1>
      <StatusFacts view={props.view} />
    </Layout>
  );
}

export function DelaysPage(props: { view: DelaysView }) {
  return (
    <Layout title="Delays" bar={props.view.bar} panel="delays">
      <h1>Delays</h1>
      <p class="lead">Round trip to each machine, measured on an immediate echo of its heartbeat. A machine is marked slow when its round trip stays above {SLOW_RTT_MS} ms for most of the last {SLOW_WINDOW_SAMPLES} s, and in red when it is not heard or isolated.</p>
      <DelayTable view={props.view} />
    </Layout>
  );
}

export function RoutingPage(props: { view: RoutingView }) {
  return (
    <Layout title="Routing" bar={props.view.bar} panel="routing">
      <h1>Routing</h1>
      <p class="lead">Which Data Hub each machine is on. Local apps always talk to their own machine, so a failover never reconnects them.</p>
      <RoutingTable view={props.view} />
    </Layout>
  );
}
