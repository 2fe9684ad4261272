/** former-backups.json: the main's removed backups it still answers, across a restart (core/failover/former-partners.ts). */
import { afterEach, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FormerPartnersFile } from "../../../src/store/former-partners-file.ts";

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});
function dataDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "understudy-former-"));
  dirs.push(dir);
  return dir;
}

const A = "0123456789abcdef";
const B = "fedcba9876543210";

describe("former backups file", () => {
  test("what is written is read back by a new instance (a restarted main); none written reads as none", () => {
    const dir = dataDir();
    expect(new FormerPartnersFile(dir).read()).toEqual([]);
    new FormerPartnersFile(dir).write([A, B]);
    expect(new FormerPartnersFile(dir).read()).toEqual([A, B]);
  });

  test("an empty list leaves no file behind", () => {
    const dir = dataDir();
    const file = new FormerPartnersFile(dir);
    file.write([A]);
    file.write([]);
    expect(existsSync(file.path)).toBe(false);
    expect(file.read()).toEqual([]);
  });

  test("a damaged file reads as none, and says what it means and what to do", () => {
    const dir = dataDir();
    const said: string[] = [];
    const file = new FormerPartnersFile(dir, (m) => void said.push(m));
    writeFileSync(file.path, "{ not json");
    expect(file.read()).toEqual([]);
    writeFileSync(file.path, JSON.stringify({ ids: ["not-an-id"] }));
    expect(file.read()).toEqual([]);
    expect(said.length).toBe(2);
    expect(said[0]).toContain("Forget this main");
  });
});
