/**
 * What the serving server's engine runner shows, on the wire to a client's
 * Health panel (docs/design.md §Render-engine backups): a client runs no
 * runner, so from level 2 it asks the server that serves for this view, and
 * at level 3 its switch buttons act through that server. Bounded like every
 * answer between machines; one that does not parse is shown as none.
 */
import { z } from "zod";
import { backupGroupSchema, MAX_BACKUP_GROUPS, MAX_ROUTER_PORT } from "./backup-groups.ts";
import { LOCK_STATES, SWITCH_REASONS } from "./router.ts";

const engineId = z.string().min(1).max(128);
const condition = z.enum(["ok", "silent", "unhealthy", "frozen"]);
const time = z.number().nullable();

const engineStatusSchema = z.discriminatedUnion("kind", [
  z.strictObject({ kind: z.literal("on-air"), condition }),
  z.strictObject({ kind: z.literal("replaced"), by: engineId, condition, reason: z.enum(SWITCH_REASONS) }),
  z.strictObject({ kind: z.literal("failed-no-backup"), condition, why: z.enum(["backup-busy", "backup-unfit", "manual-mode"]) }),
  z.strictObject({ kind: z.literal("standing-in"), for: engineId, condition }),
  z.strictObject({ kind: z.literal("standby"), condition }),
]);

const signalsSchema = z.strictObject({ lastHeardAt: time, healthy: z.boolean().nullable(), frames: z.number().int().nonnegative().nullable(), framesChangedAt: time });

export const engineWatchViewSchema = z.object({
  active: z.boolean(),
  router: z.object({
    address: z.string().max(300).nullable(),
    connected: z.boolean(),
    routes: z.array(z.number().int().min(0).max(MAX_ROUTER_PORT).nullable()).max(MAX_ROUTER_PORT + 1),
    locks: z.array(z.enum(LOCK_STATES)).max(MAX_ROUTER_PORT + 1),
  }),
  engines: z.record(engineId, engineStatusSchema),
  signals: z.record(engineId, signalsSchema),
  warnings: z.array(z.object({ groupId: z.string().max(64), destination: z.number().int(), problem: z.enum(["locked", "router-disconnected"]), message: z.string().max(1000) })).max(4096),
  groups: z.array(backupGroupSchema).max(MAX_BACKUP_GROUPS),
});
export type EngineWatchWireView = z.infer<typeof engineWatchViewSchema>;
