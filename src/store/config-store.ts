/** config.json in the data dir: what the setup pages saved. */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { configFromFileText, type ConfigFile } from "../core/config.ts";
import { writeFileAtomic } from "./atomic-file.ts";

export class ConfigFileStore {
  readonly path: string;
  constructor(dataDir: string) {
    this.path = join(dataDir, "config.json");
  }

  /** The saved settings; {} when there is no file yet. A broken file throws, naming the file and field. */
  read(): ConfigFile {
    if (!existsSync(this.path)) return {};
    return configFromFileText(readFileSync(this.path, "utf8"), this.path);
  }

  /** Merges `changes` into the saved settings (null clears a setting) and writes atomically. */
  update(changes: ConfigFile): ConfigFile {
    const next: Record<string, unknown> = { ...this.read() };
    for (const [key, value] of Object.entries(changes)) {
      if (value === undefined) continue;
      if (value === null) delete next[key];
      else next[key] = value;
    }
    writeFileAtomic(this.path, `${JSON.stringify(next, null, 2)}\n`, 0o600);
    return next as ConfigFile;
  }
}
