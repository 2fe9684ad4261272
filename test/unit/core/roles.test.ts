import { describe, expect, test } from "bun:test";
import type { LicenseType } from "../../../src/core/license.ts";
import { checkRole, roleChoices, type Role } from "../../../src/core/roles.ts";
import { issueDevLicense } from "../../support/licenses.ts";

const NOW = Date.parse("2026-11-25T12:00:00Z");
const lic = (type: LicenseType, holder = "*", days: number | null = null) => issueDevLicense({ type, holder, days, now: NOW });

describe("roles allowed by each license", () => {
  // role → license types that allow it (docs/design.md §Roles and licenses)
  const table: [Role, LicenseType | null, boolean][] = [
    ["standalone", null, true],
    ["client", null, false],
    ["server", null, false],
    ["main", null, false],
    ["backup", null, false],
    ["client", "standalone", false],
    ["client", "client", true],
    ["client", "server", true],
    ["client", "server-with-failover", true],
    ["server", "client", false],
    ["server", "server", true],
    ["server", "server-with-failover", true],
    ["main", "server", false],
    ["main", "server-with-failover", true],
    ["backup", "server", false],
    ["backup", "server-with-failover", true],
  ];
  for (const [role, type, allowed] of table) {
    test(`${role} with ${type ?? "no"} license: ${allowed ? "allowed" : "refused"}`, () => {
      const run = () => checkRole(role, type === null ? null : lic(type), "m1", NOW);
      if (allowed) expect(run).not.toThrow();
      else expect(run).toThrow();
    });
  }

  test("the refusal says what to do", () => {
    expect(() => checkRole("main", null, "m1", NOW)).toThrow("Add a license on the setup page or with --license");
    expect(() => checkRole("backup", lic("server"), "m1", NOW)).toThrow("must both run server-with-failover");
    expect(() => checkRole("client", lic("client", "other"), "m1", NOW)).toThrow('for the machine "other"');
    expect(() => checkRole("server", lic("server", "*", 1), "m1", NOW + 2 * 86_400_000)).toThrow("expired");
  });

  test("the setup page's choices carry the reason for each disabled role", () => {
    const choices = roleChoices(lic("server"), "m1", NOW);
    const byRole = Object.fromEntries(choices.map((c) => [c.role, c]));
    expect(byRole.server!.allowed).toBe(true);
    expect(byRole.client!.allowed).toBe(true);
    expect(byRole.main!.allowed).toBe(false);
    expect(byRole.main!.reason).toContain("server-with-failover");
    expect(byRole.standalone!.reason).toBeNull();
  });
});
