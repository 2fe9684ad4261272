/**
 * The compiled executable for integration tests: built once per test run
 * (build.ts, every target) and reused by every test file in the run.
 */
import { resolve } from "node:path";
import { buildExecutables, TARGETS } from "../../build.ts";

let built: Promise<string> | null = null;

export function executable(): Promise<string> {
  built ??= buildExecutables(["linux-x64", "windows-x64"]).then(() => resolve(import.meta.dir, "../..", TARGETS["linux-x64"].outfile));
  return built;
}
