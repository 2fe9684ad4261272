/** Findings 4 and 5 of the hostile-network issue: DNS rebinding past CSRF, and the password check. */
import { describe, expect, test } from "bun:test";
import { hostname } from "node:os";
import { hostAllowed, hostOfHeader } from "../../../src/web/host-allow-list.ts";
import { basicPassword, passwordMatches, throttleSource } from "../../../src/web/password-guard.ts";
import { formPost, nodesPerTest } from "../../support/machine-node.ts";

const fresh = nodesPerTest();

describe("Host allow-list (DNS rebinding)", () => {
  test("a POST under a foreign name with a matching Origin is refused with 421 and changes nothing", async () => {
    const { node } = await fresh();
    for (const path of ["/setup/key", "/setup/role", "/setup/license"]) {
      const response = await formPost(node, path, { action: "generate", role: "client", license: "x" }, { host: "evil.example:7400", origin: "http://evil.example:7400" });
      expect(response.status).toBe(421);
      expect(await response.text()).toContain('does not answer to the name "evil.example"');
    }
    expect(node.status().networkKeyFingerprint).toBeNull();
    expect(node.status().role).toBe("standalone");
  });

  const cases: { name: string; host: string; status: number }[] = [
    { name: "localhost", host: "localhost:7400", status: 200 },
    { name: "a loopback address", host: "127.0.0.1:7400", status: 200 },
    { name: "IPv6 loopback", host: "[::1]:7400", status: 200 },
    { name: "this machine's host name", host: `${hostname()}:7400`, status: 200 },
    { name: "a name given with --ui-host", host: "studio-main.example:7400", status: 200 },
    { name: "another name", host: "attacker.example", status: 421 },
    { name: "a name that only ends like localhost", host: "evil-localhost:7400", status: 421 },
    { name: "garbage", host: "a b", status: 421 },
  ];
  for (const c of cases) {
    test(`GET /api/status with Host ${c.name}: ${c.status}`, async () => {
      const { node } = await fresh({ flags: { uiHost: "Studio-Main.example, other.example" } });
      const response = await node.app.request("http://localhost/api/status", { headers: { host: c.host } });
      expect(response.status).toBe(c.status);
    });
  }

  test("the host part of a Host header", () => {
    expect(hostOfHeader("Example.COM:80")).toBe("example.com");
    expect(hostOfHeader("[fe80::1]:7400")).toBe("fe80::1");
    expect(hostOfHeader("example.com.")).toBe("example.com");
    expect(hostOfHeader("a/b")).toBeNull();
    expect(hostAllowed("10.1.2.3:7400", [], () => new Set(["10.1.2.3"]))).toBe(true);
    expect(hostAllowed("10.1.2.4:7400", [], () => new Set(["10.1.2.3"]))).toBe(false);
  });
});

describe("setup pages password", () => {
  const env = { UNDERSTUDY_UI_PASSWORD: "correct horse battery" };
  const basic = (password: string) => ({ authorization: `Basic ${Buffer.from(`admin:${password}`).toString("base64")}` });

  test("no password: 401 with the Basic challenge; the right one: 200", async () => {
    const { node } = await fresh({ env });
    const none = await node.app.request("http://localhost/api/status");
    expect(none.status).toBe(401);
    expect(none.headers.get("www-authenticate")).toContain("Basic");
    expect((await node.app.request("http://localhost/api/status", { headers: basic(env.UNDERSTUDY_UI_PASSWORD) })).status).toBe(200);
  });

  test("guessing is throttled per source (even the right password waits) and logged once with a count", async () => {
    const { node, lines } = await fresh({ env });
    const statuses: number[] = [];
    for (let i = 0; i < 8; i++) statuses.push((await node.app.request("http://localhost/api/status", { headers: basic(`guess ${i}`) })).status);
    expect(statuses).toEqual([401, 401, 401, 401, 401, 429, 429, 429]);
    expect((await node.app.request("http://localhost/api/status", { headers: basic(env.UNDERSTUDY_UI_PASSWORD) })).status).toBe(429);
    const events = lines.map((l) => JSON.parse(l).event as string);
    expect(events.filter((e) => e === "setup pages: wrong password")).toHaveLength(1);
    expect(events.filter((e) => e === "setup pages: too many wrong passwords, refusing for now")).toHaveLength(1);
  });

  test("guesses from rotating addresses never lock out the operator: the right password always gets in, and the log says it once", async () => {
    const { node, lines } = await fresh({ env });
    const from = (address: string) => ({ requestIP: () => ({ address, port: 50000, family: "IPv4" }) });
    for (let round = 0; round < 5; round++) {
      for (let i = 0; i < 20; i++) {
        const guess = await node.app.request("http://localhost/api/status", { headers: basic(`guess ${round}.${i}`) }, from(`10.9.${round}.${i}`));
        expect(guess.status).toBe(401);
      }
      expect((await node.app.request("http://localhost/api/status", { headers: basic(env.UNDERSTUDY_UI_PASSWORD) }, from("10.0.0.5"))).status).toBe(200);
      expect((await node.app.request("http://localhost/api/status", { headers: basic(env.UNDERSTUDY_UI_PASSWORD) }, from("fd00::5"))).status).toBe(200);
    }
    // One IPv6 host rotating through its /64 is one guesser.
    const statuses: number[] = [];
    for (let i = 1; i <= 7; i++) statuses.push((await node.app.request("http://localhost/api/status", { headers: basic("nope") }, from(`fd00:1:2:3::${i}`))).status);
    expect(statuses).toEqual([401, 401, 401, 401, 401, 429, 429]);
    const events = lines.map((l) => JSON.parse(l).event as string);
    expect(events.filter((e) => e === "setup pages: wrong password")).toHaveLength(1);
  });

  test("a throttled guesser is its IPv4 address or its IPv6 /64", () => {
    expect(throttleSource("10.1.2.3")).toBe("10.1.2.3");
    expect(throttleSource("::ffff:10.1.2.3")).toBe("10.1.2.3");
    expect(throttleSource("fd00:1:2:3::9")).toBe("fd00:1:2:3::/64");
    expect(throttleSource("FD00:0001:0002:0003:4:5:6:7")).toBe("fd00:1:2:3::/64");
    expect(throttleSource("fd00::1")).toBe("fd00:0:0:0::/64");
    expect(throttleSource("::1")).toBe("0:0:0:0::/64");
  });

  test("the compare hashes both sides first: equal length, constant time, any input", () => {
    expect(passwordMatches("correct horse", "correct horse")).toBe(true);
    expect(passwordMatches("correct hors", "correct horse")).toBe(false);
    expect(passwordMatches("x".repeat(10_000), "correct horse")).toBe(false);
    expect(passwordMatches(null, "correct horse")).toBe(false);
    expect(basicPassword(`Basic ${Buffer.from("u:p:with:colons").toString("base64")}`)).toBe("p:with:colons");
    expect(basicPassword("Bearer abc")).toBeNull();
  });
});
