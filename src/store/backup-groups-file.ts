/**
 * The render engines' backup groups and the video router they switch, kept by the main in `backup-groups.json`
 * in its data dir and copied from it by the paired backup (like
 * `permissions.json`, store/permissions-file.ts), so the backup switches the
 * router from the same groups while it serves. Written atomically and only
 * when changed; a damaged file is refused with what to do.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import { InvalidInput } from "../core/errors.ts";
import { backupGroupsSchema } from "../core/backup-groups.ts";
import { writeFileAtomic } from "./atomic-file.ts";

/** The one video router of a setup (a Videohub by IP, "host:port"); `enabled` is "Enable Videohub connection". */
export const routerSettingSchema = z.strictObject({ address: z.string().min(1).max(300), enabled: z.boolean() });
export type RouterSetting = z.infer<typeof routerSettingSchema>;

/** Everything the Backup groups panel keeps: the router and the groups it switches. */
export const engineBackupsSchema = z.strictObject({ router: routerSettingSchema.nullable(), groups: backupGroupsSchema });
export type EngineBackups = z.infer<typeof engineBackupsSchema>;
export const NO_ENGINE_BACKUPS: EngineBackups = { router: null, groups: [] };

export class BackupGroupsFile {
  readonly path: string;

  constructor(dataDir: string) {
    this.path = join(dataDir, "backup-groups.json");
  }

  read(): EngineBackups {
    if (!existsSync(this.path)) return NO_ENGINE_BACKUPS;
    let json: unknown = null;
    try {
      json = JSON.parse(readFileSync(this.path, "utf8"));
    } catch {
      json = null;
    }
    const parsed = engineBackupsSchema.safeParse(json);
    if (!parsed.success) {
      throw new InvalidInput(`${this.path} is damaged. Move it away; then set the backup groups again on the Backup groups panel.`, "data");
    }
    return parsed.data;
  }

  /** Every group at once (the main's save, the backup's copy): written only when it changed, so a steady copy costs no disk writes. */
  replace(backups: EngineBackups): void {
    const checked = engineBackupsSchema.safeParse(backups);
    if (!checked.success) throw new InvalidInput("Those backup groups are not ones understudy wrote: nothing was saved.", "data");
    const text = `${JSON.stringify(checked.data)}\n`;
    if (existsSync(this.path) && readFileSync(this.path, "utf8") === text) return;
    writeFileAtomic(this.path, text, 0o600);
  }
}
