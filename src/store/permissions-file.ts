/**
 * The permission level of each client machine, kept by the main in
 * `permissions.json` in its data dir (machine id → level; absent means the
 * default), and copied from it by the paired backup, which answers clients
 * from its copy while it serves. Written atomically; a damaged file is refused
 * with what to do.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import { InvalidInput } from "../core/errors.ts";
import { PERMISSION_LEVELS, type PermissionLevel } from "../core/permissions.ts";
import { writeFileAtomic } from "./atomic-file.ts";

/** A studio network has tens of machines; a file with more is not one we wrote. */
const MAX_ENTRIES = 4096;

export const permissionLevelsSchema = z.record(z.string().regex(/^[0-9a-f]{16}$/), z.union(PERMISSION_LEVELS.map((l) => z.literal(l)) as [z.ZodLiteral<1>, z.ZodLiteral<2>, z.ZodLiteral<3>]));

export class PermissionsFile {
  readonly path: string;

  constructor(dataDir: string) {
    this.path = join(dataDir, "permissions.json");
  }

  read(): Record<string, PermissionLevel> {
    if (!existsSync(this.path)) return {};
    let json: unknown = null;
    try {
      json = JSON.parse(readFileSync(this.path, "utf8"));
    } catch {
      json = null;
    }
    const parsed = permissionLevelsSchema.safeParse(json);
    if (!parsed.success || Object.keys(parsed.data).length > MAX_ENTRIES) {
      throw new InvalidInput(`${this.path} is damaged. Move it away; every client then has the default permission level until you set it again.`, "data");
    }
    return parsed.data;
  }

  set(machineId: string, level: PermissionLevel): void {
    this.replace({ ...this.read(), [machineId]: level });
  }

  /** The backup's copy of the main's levels: written only when they changed, so a steady copy costs no disk writes. */
  replace(levels: Record<string, PermissionLevel>): void {
    if (Object.keys(levels).length > MAX_ENTRIES) throw new InvalidInput(`More than ${MAX_ENTRIES} permission levels: that is not a studio network's list.`, "data");
    const text = `${JSON.stringify(levels)}\n`;
    if (existsSync(this.path) && readFileSync(this.path, "utf8") === text) return;
    writeFileAtomic(this.path, text, 0o600);
  }
}
