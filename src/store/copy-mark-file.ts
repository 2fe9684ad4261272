/**
 * How far the backup has copied its main's Data Hub state (docs/design.md
 * §Lanes and replication): the `through` of the last answer it imported, and
 * from which main. The next question asks "since" this, not since the backup's
 * own last version: after the backup served, its own writes are newer than
 * writes the main took while cut off, and asking since them would skip those.
 * Kept across restarts in one small file beside the database, written only
 * after the answer was imported (a crash between asks again: importing twice
 * changes nothing).
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import { versionSchema, type Version } from "../hub/frames.ts";
import { writeFileAtomic } from "./atomic-file.ts";

const markSchema = z.object({ peerId: z.string(), through: versionSchema });

export class CopyMarkFile {
  readonly path: string;
  private last: { peerId: string; through: Version } | null | undefined;

  constructor(dataDir: string) {
    this.path = join(dataDir, "hub-copy-mark.json");
  }

  /** Copied through this version of `peerId`'s state, or null (none yet, another main, or an unreadable file: copy everything). */
  read(peerId: string): Version | null {
    this.last ??= this.load();
    return this.last !== null && this.last.peerId === peerId ? this.last.through : null;
  }

  write(peerId: string, through: Version): void {
    const current = this.read(peerId);
    if (current !== null && current.epoch === through.epoch && current.seq === through.seq) return;
    this.last = { peerId, through };
    writeFileAtomic(this.path, `${JSON.stringify(this.last)}\n`, 0o600);
  }

  private load(): { peerId: string; through: Version } | null {
    if (!existsSync(this.path)) return null;
    try {
      const parsed = markSchema.safeParse(JSON.parse(readFileSync(this.path, "utf8")));
      return parsed.success ? parsed.data : null;
    } catch {
      return null;
    }
  }
}
