/**
 * The failover epoch, persisted before it is ever announced (docs/design.md §Epochs and certificates): a
 * server that restarts must never announce an epoch lower than one it held.
 * One small file, written atomically with fsync.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import { InvalidInput } from "../core/errors.ts";
import { writeFileAtomic } from "./atomic-file.ts";

const epochFileSchema = z.strictObject({ epoch: z.number().int().nonnegative() });

export class EpochFile {
  readonly path: string;
  constructor(dataDir: string) {
    this.path = join(dataDir, "epoch.json");
  }

  read(): number {
    if (!existsSync(this.path)) return 0;
    const parsed = epochFileSchema.safeParse(JSON.parse(readFileSync(this.path, "utf8") || "null"));
    if (!parsed.success) throw new InvalidInput(`${this.path} is damaged. Restore it from the other server's status page (its epoch), or move it away to start at 0.`, "data");
    return parsed.data.epoch;
  }

  /** Returns only once the epoch is on disk. Refuses to go backwards. */
  write(epoch: number): void {
    const current = this.read();
    if (epoch < current) throw new InvalidInput(`Refusing to lower the persisted epoch from ${current} to ${epoch}.`, "epoch");
    if (epoch === current && existsSync(this.path)) return;
    writeFileAtomic(this.path, `${JSON.stringify({ epoch })}\n`, 0o600);
  }
}
