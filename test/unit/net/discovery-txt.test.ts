import { describe, expect, test } from "bun:test";
import dnssd from "dnssd";
import { InvalidInput } from "../../../src/core/errors.ts";
import { advertisedListenHost, encodeTxt, parseTxt, TXT_KEYS, type MachineAdvert } from "../../../src/net/discovery/txt.ts";

const SELF: MachineAdvert = {
  id: "0011223344556677",
  name: "Render 1",
  role: "main",
  license: "server-with-failover",
  version: "1.2.3-rc.1+build.7",
  fingerprint: "0123456789abcdef",
  epoch: 42,
};

/** The record as dnssd hands it over: key → Buffer. */
function wire(fields: Record<string, string | Uint8Array | true | null>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(fields).map(([k, v]) => [k, typeof v === "string" ? Buffer.from(v, "utf8") : v]));
}
const good = (): Record<string, string> => ({ txtvers: "1", id: SELF.id, name: SELF.name, role: "main", lic: "server-with-failover", ver: SELF.version, fp: SELF.fingerprint, epoch: "42" });
const withField = (key: string, value: string | Uint8Array | true | null) => wire({ ...good(), [key]: value });
const without = (key: string) => {
  const fields: Record<string, string> = good();
  delete fields[key];
  return wire(fields);
};

describe("encodeTxt", () => {
  test("round-trips through parseTxt, as Buffers (what dnssd sends) and as strings", () => {
    const txt = encodeTxt(SELF);
    expect(Object.values(txt).every((v) => Buffer.isBuffer(v))).toBe(true);
    expect(parseTxt(txt)).toEqual({ ok: true, value: SELF });
    const strings = Object.fromEntries(Object.entries(txt).map(([k, v]) => [k, v.toString()]));
    expect(parseTxt(strings)).toEqual({ ok: true, value: SELF });
  });

  test("puts txtvers first and fits dnssd's TXT limits (keys ≤ 9 chars, record < 1300 bytes)", () => {
    const longest: MachineAdvert = { ...SELF, name: "N".repeat(63), version: "9".repeat(32), epoch: 999_999_999_999_999, at: "fd12:3456:789a:1:ffff:ffff:ffff:ffff" };
    const txt = encodeTxt(longest);
    expect(Object.keys(txt)[0]).toBe("txtvers");
    expect(Object.keys(txt).every((k) => k.length <= 9)).toBe(true);
    expect(Object.keys(txt).sort()).toEqual(Object.values(TXT_KEYS).sort());
    expect(() => (dnssd as unknown as { validate: { txt(t: unknown): void } }).validate.txt(txt)).not.toThrow();
  });

  test.each([
    ["a name with a control character", { name: "bell\u0007" }],
    ["a name over 63 bytes", { name: "x".repeat(64) }],
    ["an unknown role", { role: "god" }],
    ["a negative epoch", { epoch: -1 }],
    ["a fractional epoch", { epoch: 1.5 }],
    ["an upper-case fingerprint", { fingerprint: "0123456789ABCDEF" }],
    ["a short id", { id: "0011" }],
  ])("refuses %s with InvalidInput", (_, change) => {
    expect(() => encodeTxt({ ...SELF, ...change } as MachineAdvert)).toThrow(InvalidInput);
  });
});

describe("the listen host (TXT at): the one address a peer port bound to one IP answers on", () => {
  test("round-trips, IPv4 and IPv6, and stays absent when the peer port listens everywhere", () => {
    for (const at of ["10.0.0.2", "fd00::2"]) expect(parseTxt(encodeTxt({ ...SELF, at }))).toEqual({ ok: true, value: { ...SELF, at } });
    expect(Object.keys(encodeTxt(SELF))).not.toContain("at");
  });

  test.each([
    ["10.0.0.2:7401", "10.0.0.2"],
    ["[fd00::2]:7401", "fd00::2"],
    ["0.0.0.0:7401", undefined],
    ["[::]:7401", undefined],
    ["studio-b.local:7401", undefined],
    [null, undefined],
  ])("--peer-listen %p advertises %p", (listen, at) => {
    expect(advertisedListenHost(listen)).toBe(at);
  });

  test.each([["0.0.0.0"], ["::"], ["fe80::1%eth0"], ["studio-b"], ["10.0.0.256"]])("a record whose at is %p is refused", (at) => {
    const result = parseTxt(withField("at", at));
    expect(result.ok).toBe(false);
  });
});

describe("parseTxt on hostile input", () => {
  const longValue = new Uint8Array(300).fill(0x61);
  const cases: [string, unknown, string][] = [
    ["not an object", "id=1", "not a key/value map"],
    ["null", null, "not a key/value map"],
    ["an array", [Buffer.from("id=1")], "not a key/value map"],
    ["an empty record", {}, "bad TXT record"],
    ["no txtvers", without("txtvers"), "txtvers"],
    ["txtvers 2", withField("txtvers", "2"), "only TXT version 1"],
    ["no fingerprint", without("fp"), "fp"],
    ["no id", without("id"), "id"],
    ["no epoch", without("epoch"), "epoch"],
    ["a bare key for id (no value)", withField("id", true), "id"],
    ["an empty value for name (key=)", withField("name", null), "name"],
    ["an empty name", withField("name", ""), "name"],
    ["a 64-byte name", withField("name", "x".repeat(64)), "name"],
    ["a name with HTML", withField("name", '"><script>alert(1)</script>'), "name"],
    ["a bidi override in the name", withField("name", "\u202Eevil"), "name"],
    ["a control character in the name", withField("name", "bell\u0007"), "name"],
    ["a non-ASCII name", withField("name", "Régie 1"), "name"],
    ["a trailing space", withField("name", "Render "), "name"],
    ["invalid UTF-8", withField("name", new Uint8Array([0xff, 0xfe, 0xc3])), "not valid UTF-8"],
    ["a value over 255 bytes", withField("ver", longValue), "300 bytes"],
    ["an unknown role", withField("role", "god"), "role"],
    ["an unknown license", withField("lic", "pirated"), "lic"],
    ["a negative epoch", withField("epoch", "-1"), "epoch"],
    ["an epoch with a leading zero", withField("epoch", "007"), "epoch"],
    ["an exponent epoch", withField("epoch", "1e3"), "epoch"],
    ["a 40-digit epoch", withField("epoch", "9".repeat(40)), "epoch"],
    ["a hex epoch", withField("epoch", "0x10"), "epoch"],
    ["an upper-case fingerprint", withField("fp", "0123456789ABCDEF"), "fp"],
    ["a 15-digit fingerprint", withField("fp", "0123456789abcde"), "fp"],
    ["an id with spaces", withField("id", "0011 2233 4455 6677"), "id"],
    ["a version with spaces", withField("ver", "1.0 beta"), "ver"],
    ["a 33-character version", withField("ver", "1".repeat(33)), "ver"],
    ["a numeric value instead of a string", withField("epoch", 5 as unknown as string), "epoch"],
  ];
  test.each(cases)("refuses %s", (_, raw, reason) => {
    const result = parseTxt(raw);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.reason).toContain(reason);
  });

  test("never echoes a hostile value in its reason", () => {
    const result = parseTxt(withField("name", '"><script>alert(1)</script>'));
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.reason).not.toContain("<script>");
  });

  test("reads keys without regard to case; the first of duplicate keys wins", () => {
    const upper = Object.fromEntries(Object.entries(good()).map(([k, v]) => [k.toUpperCase(), Buffer.from(v)]));
    expect(parseTxt(upper)).toEqual({ ok: true, value: { ...SELF, epoch: 42 } });
    const duplicated = { ...wire(good()), EPOCH: Buffer.from("43") };
    expect(parseTxt(duplicated)).toMatchObject({ ok: true, value: { epoch: 42 } });
  });

  test("ignores unknown keys, including __proto__, without polluting anything", () => {
    const raw = JSON.parse(JSON.stringify(good()).replace("{", '{"__proto__":"x","constructor":"y","future":"z",'));
    expect(Object.keys(raw)).toContain("__proto__");
    const result = parseTxt(raw);
    expect(result).toEqual({ ok: true, value: SELF });
    expect(({} as Record<string, unknown>).x).toBeUndefined();
  });

  test("accepts the largest epoch it can advertise and every role and license", () => {
    expect(parseTxt(withField("epoch", "999999999999999"))).toMatchObject({ ok: true, value: { epoch: 999_999_999_999_999 } });
    for (const role of ["standalone", "client", "server", "main", "backup"]) expect(parseTxt(withField("role", role)).ok).toBe(true);
    for (const lic of ["none", "standalone", "client", "server", "server-with-failover"]) expect(parseTxt(withField("lic", lic)).ok).toBe(true);
  });
});
