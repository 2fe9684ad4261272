/**
 * The backups the main removed and has not yet heard let go
 * (core/failover/former-partners.ts), kept across a restart of the main: a
 * removed backup powered on after the main restarted must still be told. One
 * small file in the data dir, written atomically before anything else happens.
 */
import { existsSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import { MAX_FORMER_PARTNERS } from "../core/failover/index.ts";
import { writeFileAtomic } from "./atomic-file.ts";

const fileSchema = z.strictObject({ ids: z.array(z.string().regex(/^[0-9a-f]{16}$/)).max(MAX_FORMER_PARTNERS) });

export class FormerPartnersFile {
  readonly path: string;

  constructor(
    dataDir: string,
    /** A damaged file is read as empty (the main must start whatever it holds): said here, once per read. */
    private readonly damaged: (message: string) => void = () => {},
  ) {
    this.path = join(dataDir, "former-backups.json");
  }

  read(): readonly string[] {
    if (!existsSync(this.path)) return [];
    let json: unknown = null;
    try {
      json = JSON.parse(readFileSync(this.path, "utf8"));
    } catch {}
    const parsed = fileSchema.safeParse(json);
    if (parsed.success) return parsed.data.ids;
    this.damaged(`${this.path} is damaged, so this main no longer tells the backups it removed that they were removed. A removed backup that still thinks it is paired may take over when it hears no main: on its own setup page, choose Forget this main.`);
    return [];
  }

  write(ids: readonly string[]): void {
    if (ids.length === 0) rmSync(this.path, { force: true });
    else writeFileAtomic(this.path, `${JSON.stringify({ ids })}\n`, 0o600);
  }
}
