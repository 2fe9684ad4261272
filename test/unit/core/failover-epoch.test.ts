import { describe, expect, test } from "bun:test";
import { claimEpoch, epochOwner, type ServerRole } from "../../../src/core/failover/index.ts";

describe("epochs", () => {
  // known epoch, role → the epoch it claims when it becomes active
  const table: [number, ServerRole, number][] = [
    [0, "main", 1], // a fresh network starts at 1
    [0, "backup", 2],
    [1, "backup", 2], // the usual alternation: +1 each time the active server changes
    [2, "main", 3],
    [3, "backup", 4],
    [1, "main", 3], // a main restarting after its own term 1 takes a new term
    [2, "backup", 4],
    [5, "backup", 6],
    [-3, "main", 1],
  ];
  for (const [known, role, claimed] of table) {
    test(`knowing ${known}, the ${role} claims ${claimed}`, () => expect(claimEpoch(role, known)).toBe(claimed));
  }

  test("the main owns odd epochs, the backup even ones, 0 is nobody's", () => {
    expect([0, 1, 2, 3, 4].map(epochOwner)).toEqual([null, "main", "backup", "main", "backup"]);
  });

  test("two servers never claim the same epoch, whatever each knows", () => {
    for (let a = 0; a < 50; a++) {
      for (let b = 0; b < 50; b++) {
        const m = claimEpoch("main", a);
        const k = claimEpoch("backup", b);
        expect(m).not.toBe(k);
        expect(m).toBeGreaterThan(a);
        expect(k).toBeGreaterThan(b);
        expect(m - a).toBeLessThanOrEqual(2);
      }
    }
  });
});
