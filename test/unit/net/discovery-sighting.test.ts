import { describe, expect, test } from "bun:test";
import { MAX_ADDRESSES, parseSighting, usableAddresses } from "../../../src/net/discovery/sighting.ts";
import { encodeTxt, type MachineAdvert } from "../../../src/net/discovery/txt.ts";

const ADVERT: MachineAdvert = {
  id: "0011223344556677",
  name: "Render 1",
  role: "client",
  license: "client",
  version: "1.0.0",
  fingerprint: "0123456789abcdef",
  epoch: 3,
};

/** A service as dnssd's Browser reports it. */
function service(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    fullname: "Render 1._understudy._tcp.local.",
    name: "Render 1",
    type: { name: "understudy", protocol: "tcp" },
    domain: "local",
    host: "understudy-001122334455.local.",
    port: 7401,
    addresses: ["fe80::1", "10.0.0.7"],
    txt: {},
    txtRaw: encodeTxt(ADVERT),
    ...overrides,
  };
}

describe("parseSighting", () => {
  test("reads a well-formed service: IPv4 first", () => {
    expect(parseSighting(service())).toEqual({
      ok: true,
      value: { service: "Render 1._understudy._tcp.local.", advert: ADVERT, addresses: ["10.0.0.7", "fe80::1"], port: 7401 },
    });
  });

  test("a machine naming its listen host (TXT at) is reached there only, not at every address dnssd announced", () => {
    const at = { ...ADVERT, at: "10.0.0.9" };
    const result = parseSighting(service({ addresses: ["10.0.0.7", "10.0.0.9", "fe80::1"], txtRaw: encodeTxt(at) }));
    expect(result).toEqual({ ok: true, value: { service: "Render 1._understudy._tcp.local.", advert: at, addresses: ["10.0.0.9"], port: 7401 } });
  });

  const refused: [string, unknown, string][] = [
    ["undefined", undefined, "malformed service record"],
    ["a string", "Render 1", "malformed service record"],
    ["no fullname", service({ fullname: undefined }), "fullname"],
    ["an empty fullname", service({ fullname: "" }), "fullname"],
    ["a 10 kB fullname", service({ fullname: "x".repeat(10_000) }), "fullname"],
    ["port 0", service({ port: 0 }), "port"],
    ["port 70000", service({ port: 70_000 }), "port"],
    ["a port as text", service({ port: "7401" }), "port"],
    ["addresses not a list", service({ addresses: "10.0.0.7" }), "addresses"],
    ["a thousand addresses", service({ addresses: Array(1000).fill("10.0.0.7") }), "addresses"],
    ["no address", service({ addresses: [] }), "no usable IP address"],
    ["only junk addresses", service({ addresses: ["localhost", "10.0.0.256", 7, null, "::ffff:zz"] }), "no usable IP address"],
    ["no TXT record", service({ txtRaw: undefined }), "not a key/value map"],
    ["a bad TXT record", service({ txtRaw: { txtvers: Buffer.from("1") } }), "bad TXT record"],
  ];
  test.each(refused)("refuses %s", (_, input, reason) => {
    const result = parseSighting(input);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.reason).toContain(reason);
  });
});

describe("usableAddresses", () => {
  test("keeps valid IP literals once each, IPv4 before IPv6, at most MAX_ADDRESSES", () => {
    expect(usableAddresses(["fe80::2", "10.0.0.1", "10.0.0.1", "bogus", "192.168.1.9", "::1"])).toEqual(["10.0.0.1", "192.168.1.9", "fe80::2", "::1"]);
    const many = Array.from({ length: 20 }, (_, i) => `10.0.0.${i + 1}`);
    expect(usableAddresses(many)).toHaveLength(MAX_ADDRESSES);
  });
});
