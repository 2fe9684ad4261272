import { describe, expect, test } from "bun:test";
import {
  clampForgetAfter,
  DEFAULT_FORGET_AFTER_MS,
  MachineTable,
  MAX_FORGET_AFTER_MS,
  MAX_SERVICES,
  MIN_FORGET_AFTER_MS,
} from "../../../src/net/discovery/machine-table.ts";
import type { Sighting } from "../../../src/net/discovery/sighting.ts";
import type { MachineAdvert } from "../../../src/net/discovery/txt.ts";

const KEY = "0123456789abcdef";
const SELF = { id: "aaaaaaaaaaaaaaaa", fingerprint: KEY };

function sighting(name: string, id: string, changes: Partial<MachineAdvert> = {}, addresses = ["10.0.0.9"]): Sighting {
  const advert: MachineAdvert = { id, name, role: "client", license: "client", version: "1.0.0", fingerprint: KEY, epoch: 0, ...changes };
  return { service: `${name}._understudy._tcp.local.`, advert, addresses, port: 7401 };
}

describe("MachineTable", () => {
  test("lists what it has seen, sorted by name, leaving ourselves out", () => {
    const table = new MachineTable();
    table.seen(sighting("Zeta", "0000000000000002"), 10);
    table.seen(sighting("Alpha", "0000000000000001"), 20);
    table.seen(sighting("Me", SELF.id), 30);
    expect(table.list(SELF).map((m) => [m.name, m.lastSeen])).toEqual([
      ["Alpha", 20],
      ["Zeta", 10],
    ]);
    expect(table.list(SELF)[0]).toEqual({
      id: "0000000000000001",
      name: "Alpha",
      role: "client",
      license: "client",
      version: "1.0.0",
      fingerprint: KEY,
      epoch: 0,
      addresses: ["10.0.0.9"],
      port: 7401,
      keyMismatch: false,
      lastSeen: 20,
    });
  });

  test("flags a machine whose key fingerprint differs from ours", () => {
    const table = new MachineTable();
    table.seen(sighting("Same", "0000000000000001"), 0);
    table.seen(sighting("Other", "0000000000000002", { fingerprint: "fedcba9876543210" }), 0);
    expect(Object.fromEntries(table.list(SELF).map((m) => [m.name, m.keyMismatch]))).toEqual({ Same: false, Other: true });
    // Our own key changing changes the verdict at once.
    expect(table.list({ ...SELF, fingerprint: "fedcba9876543210" }).find((m) => m.name === "Same")?.keyMismatch).toBe(true);
  });

  test("seen() says whether the list changed, not just lastSeen", () => {
    const table = new MachineTable();
    expect(table.seen(sighting("A", "0000000000000001"), 0)).toBe(true);
    expect(table.seen(sighting("A", "0000000000000001"), 100)).toBe(false);
    expect(table.seen(sighting("A", "0000000000000001", { epoch: 1 }), 200)).toBe(true);
    expect(table.seen(sighting("A", "0000000000000001", { epoch: 1 }, ["10.0.0.10"]), 300)).toBe(true);
    expect(table.list(SELF)[0]?.lastSeen).toBe(300);
  });

  test("lastSeen never moves backwards", () => {
    const table = new MachineTable();
    table.seen(sighting("A", "0000000000000001"), 500);
    table.seen(sighting("A", "0000000000000001"), 100);
    expect(table.list(SELF)[0]?.lastSeen).toBe(500);
  });

  test("gone() forgets a service at once", () => {
    const table = new MachineTable();
    const a = sighting("A", "0000000000000001");
    table.seen(a, 0);
    expect(table.gone(a.service)).toBe(true);
    expect(table.gone(a.service)).toBe(false);
    expect(table.list(SELF)).toEqual([]);
  });

  test.each([
    // forgetAfterMs, last seen, now, still listed
    [1_000, 0, 1_000, true],
    [1_000, 0, 1_001, false],
    [1_000, 500, 1_400, true],
    [30_000, 0, 29_999, true],
    [30_000, 0, 30_001, false],
  ])("forgetAfterMs %d: seen at %d, expire(%d) keeps it: %p", (forgetAfterMs, seenAt, now, kept) => {
    const table = new MachineTable(forgetAfterMs);
    const a = sighting("A", "0000000000000001");
    table.seen(a, seenAt);
    expect(table.expire(now)).toEqual(kept ? [] : [a.service]);
    expect(table.list(SELF).length).toBe(kept ? 1 : 0);
  });

  test("one row per machine id: the service vouched for most recently wins", () => {
    const table = new MachineTable();
    const old = { ...sighting("Render", "0000000000000001"), service: "Render._understudy._tcp.local." };
    const renamed = { ...sighting("Render 2", "0000000000000001"), service: "Render 2._understudy._tcp.local." };
    table.seen(old, 100);
    table.seen(renamed, 200);
    expect(table.list(SELF).map((m) => m.name)).toEqual(["Render 2"]);
    table.seen(old, 300);
    expect(table.list(SELF).map((m) => m.name)).toEqual(["Render"]);
  });

  test("holds at most MAX_SERVICES services; known ones still update", () => {
    const table = new MachineTable();
    for (let i = 0; i < MAX_SERVICES; i++) table.seen(sighting(`M${i}`, i.toString(16).padStart(16, "0")), 0);
    expect(table.seen(sighting("One too many", "ffffffffffffffff"), 1)).toBe(false);
    expect(table.size).toBe(MAX_SERVICES);
    expect(table.seen(sighting("M0", "0000000000000000", { epoch: 9 }), 2)).toBe(true);
  });

  test("returns copies: changing a listed row does not change the table", () => {
    const table = new MachineTable();
    table.seen(sighting("A", "0000000000000001"), 0);
    table.list(SELF)[0]?.addresses.push("6.6.6.6");
    expect(table.list(SELF)[0]?.addresses).toEqual(["10.0.0.9"]);
  });
});

describe("clampForgetAfter", () => {
  test.each([
    [undefined, DEFAULT_FORGET_AFTER_MS],
    [Number.NaN, DEFAULT_FORGET_AFTER_MS],
    [0, MIN_FORGET_AFTER_MS],
    [-5, MIN_FORGET_AFTER_MS],
    [1_234.6, 1_235],
    [Number.POSITIVE_INFINITY, DEFAULT_FORGET_AFTER_MS],
    [10 * MAX_FORGET_AFTER_MS, MAX_FORGET_AFTER_MS],
  ])("%p → %p", (input, expected) => {
    expect(clampForgetAfter(input)).toBe(expected);
  });
});
