/** One-line summaries of machine states, for simulator traces. */
import type { NodeState } from "../../src/core/failover/index.ts";

/** A one-line summary of a machine's state, for traces. */
export function describe(s: NodeState): string {
  switch (s.role) {
    case "main":
      return s.phase.kind === "active" ? `active@${s.phase.epoch}` : `${s.phase.kind}(known ${s.epoch})`;
    case "backup":
      return s.phase.kind === "active"
        ? `active@${s.phase.epoch}`
        : `${s.phase.kind}${s.phase.kind === "idle" && s.phase.condition ? "!" + s.phase.condition : ""}(known ${s.epoch})`;
    case "client":
      return `follows ${s.following ?? "none"}@${s.followingEpoch ?? "-"}`;
  }
}
