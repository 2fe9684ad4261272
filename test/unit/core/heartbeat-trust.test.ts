import { describe, expect, test } from "bun:test";
import { heartbeatCounts, serversKnownTo, type BeatClaim, type KnownServers } from "../../../src/core/heartbeat-trust.ts";

const servers: KnownServers = { main: "m", backup: "b" };

describe("whose heartbeat counts", () => {
  const cases: [string, BeatClaim, string | null, KnownServers, boolean][] = [
    ["the main, sealed by the main", { id: "m", role: "main" }, "m", servers, true],
    ["the backup, sealed by the backup", { id: "b", role: "backup" }, "b", servers, true],
    ["the main's id under the network key (any key holder)", { id: "m", role: "main" }, null, servers, false],
    ["the main's id sealed by another machine", { id: "m", role: "main" }, "r", servers, false],
    ["the backup's id claiming to be the main, sealed by the backup", { id: "b", role: "main" }, "b", servers, false],
    ["the main's id as a client, under the network key", { id: "m", role: "client" }, null, servers, false],
    ["another machine as the main, sealed by itself", { id: "r", role: "main" }, "r", servers, false],
    ["another machine as the backup, under the network key", { id: "r", role: "backup" }, null, servers, false],
    ["a server role before any server is known", { id: "m", role: "main" }, "m", { main: null, backup: null }, false],
    ["a client, under the network key", { id: "c", role: "client" }, null, servers, true],
    ["a client, sealed by itself", { id: "c", role: "client" }, "c", servers, true],
    ["a client's id sealed by another machine", { id: "c", role: "client" }, "r", servers, false],
  ];
  for (const [name, claim, sealedBy, known, counts] of cases) {
    test(`${name}: ${counts ? "counts" : "refused"}`, () => expect(heartbeatCounts(claim, sealedBy, known)).toBe(counts));
  }

  test("a server knows itself and the partner its pairing names", () => {
    expect(serversKnownTo({ role: "main", id: "m" }, "b")).toEqual({ main: "m", backup: "b" });
    expect(serversKnownTo({ role: "backup", id: "b" }, null)).toEqual({ main: null, backup: "b" });
  });
});
