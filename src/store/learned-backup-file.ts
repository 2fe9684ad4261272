/**
 * A client's backup as its main last said it (docs/design.md §Pairing): the
 * paired backup's peer address and machine id, kept in one small file in the
 * data dir so a client restarted while the main is down still follows it.
 * Written atomically; an unreadable file is as if none were learned.
 */
import { existsSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import { writeFileAtomic } from "./atomic-file.ts";

export const learnedBackupSchema = z.strictObject({ address: z.string().min(1).max(300), machineId: z.string().regex(/^[0-9a-f]{16}$/) });
export type LearnedBackupWord = z.infer<typeof learnedBackupSchema>;

export class LearnedBackupFile {
  readonly path: string;

  constructor(dataDir: string) {
    this.path = join(dataDir, "learned-backup.json");
  }

  read(): LearnedBackupWord | null {
    if (!existsSync(this.path)) return null;
    try {
      const parsed = learnedBackupSchema.safeParse(JSON.parse(readFileSync(this.path, "utf8")));
      return parsed.success ? parsed.data : null;
    } catch {
      return null;
    }
  }

  /** Keeps what the main said; null (it has no backup) forgets. */
  write(word: LearnedBackupWord | null): void {
    if (word === null) rmSync(this.path, { force: true });
    else writeFileAtomic(this.path, `${JSON.stringify(word)}\n`, 0o600);
  }
}
