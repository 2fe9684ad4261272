/** @jsxImportSource hono/jsx */
/** Machine name, role and the Status chip; refreshes itself so the chip is never stale for long. */
import type { MachineStatus } from "../src/core/status.ts";
import { refusalText } from "./refusal.tsx";

const CHIP_TONE: Record<MachineStatus["chip"], string> = {
  "Stand-alone": "neutral",
  "No backup": "neutral",
  "Backup is syncing": "warn",
  "Backup is idle": "ok",
  "Backup is active": "alert",
  "Main unreachable from backup": "warn",
  "Main isolated": "alert",
  "No server reachable": "alert",
};

export function StatusBar(props: { status: MachineStatus }) {
  const s = props.status;
  return (
    <header id="status-bar" class="status-bar" hx-get="/partials/status-bar" hx-trigger="every 1s" hx-swap="outerHTML">
      <span class="machine-name" data-testid="machine-name">{s.name}</span>
      <span class="machine-role" data-testid="machine-role">{s.roleLabel}</span>
      <span class={`chip chip-${CHIP_TONE[s.chip]}`} data-testid="status-chip" role="status">
        {s.chip}
      </span>
      {s.failover?.refusal ? (
        <span class="chip chip-alert" data-testid="refusal-chip" title={refusalText(s.failover.refusal)}>
          {s.failover.refusal.code === "NETWORK_KEY_MISMATCH" ? "Network key differs from the server's" : "Refused by the server"}
        </span>
      ) : null}
      <span class="version">understudy {s.version}</span>
    </header>
  );
}
