/**
 * A bench's folder: a fresh network key and a development license for every machine it starts
 * (real executables, `--key` and `--license`). Removed by the bench when it ends.
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { devLicenseText } from "../support/licenses.ts";

export function benchFolder(bin: string, prefix: string): { dir: string; keyFile: string; licFile: string } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const keyFile = join(dir, "net.key");
  const licFile = join(dir, "lic.json");
  Bun.spawnSync([bin, "keys", "generate", "--out", keyFile]);
  writeFileSync(licFile, devLicenseText({ type: "server-with-failover", holder: "*" }));
  return { dir, keyFile, licFile };
}
