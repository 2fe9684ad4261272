/** @jsxImportSource hono/jsx */
/**
 * Machine name, role and the Status chip, large enough to read from two
 * metres. The live stream (/events) sends it again whenever it changes.
 */
import type { StatusBarView } from "../view-models/status-bar-view.ts";

export function StatusBar(props: { bar: StatusBarView; outOfBand?: boolean }) {
  const s = props.bar;
  const chip = s.chip;
  return (
    <header id="status-bar" class={`status-bar tone-${chip.tone}`} hx-swap-oob={props.outOfBand ? "true" : undefined}>
      <div class="identity">
        <span class="machine-name" data-testid="machine-name">{s.name}</span>
        <span class="machine-role" data-testid="machine-role">{s.roleLabel}</span>
      </div>
      <div class={`chip chip-${chip.tone}`} data-testid="status-chip" role="status" aria-live="polite">
        {chip.text}
      </div>
      <p class="chip-hint" data-testid="chip-hint">{chip.hint}</p>
      <span class="version">understudy {s.version}</span>
    </header>
  );
}
