import { describe, expect, test } from "bun:test";
import { heartbeatCounts, MAX_EPOCH_FROM_CLIENTS, serversKnownTo, type BeatClaim, type KnownServers } from "../../../src/core/heartbeat-trust.ts";

const servers: KnownServers = { main: "m", backup: "b" };

describe("whose heartbeat counts", () => {
  const cases: [string, BeatClaim, string | null, KnownServers, boolean][] = [
    ["the main, sealed by the main", { id: "m", role: "main", epoch: 3, activeEpoch: 3 }, "m", servers, true],
    ["the backup, sealed by the backup", { id: "b", role: "backup", epoch: 3, activeEpoch: 3 }, "b", servers, true],
    ["the main's id under the network key (any key holder)", { id: "m", role: "main", epoch: 3, activeEpoch: 3 }, null, servers, false],
    ["the main's id sealed by another machine", { id: "m", role: "main", epoch: 3, activeEpoch: 3 }, "r", servers, false],
    ["the backup's id claiming to be the main, sealed by the backup", { id: "b", role: "main", epoch: 3, activeEpoch: 3 }, "b", servers, false],
    ["the main's id as a client, under the network key", { id: "m", role: "client", epoch: 3, activeEpoch: 3 }, null, servers, false],
    ["another machine as the main, sealed by itself", { id: "r", role: "main", epoch: 3, activeEpoch: 3 }, "r", servers, false],
    ["another machine as the backup, under the network key", { id: "r", role: "backup", epoch: 3, activeEpoch: 3 }, null, servers, false],
    ["a server role before any server is known", { id: "m", role: "main", epoch: 3, activeEpoch: 3 }, "m", { main: null, backup: null }, false],
    ["a client, under the network key", { id: "c", role: "client", epoch: 3, activeEpoch: 3 }, null, servers, true],
    ["a client, sealed by itself", { id: "c", role: "client", epoch: 3, activeEpoch: 3 }, "c", servers, true],
    ["a client naming an epoch where sums stop being exact", { id: "c", role: "client", epoch: 2 ** 53 - 1, activeEpoch: null }, "c", servers, false],
    ["a client following an epoch beyond any real one", { id: "c", role: "client", epoch: 3, activeEpoch: MAX_EPOCH_FROM_CLIENTS + 1 }, null, servers, false],
    ["a client's id sealed by another machine", { id: "c", role: "client", epoch: 3, activeEpoch: 3 }, "r", servers, false],
  ];
  for (const [name, claim, sealedBy, known, counts] of cases) {
    test(`${name}: ${counts ? "counts" : "refused"}`, () => expect(heartbeatCounts(claim, sealedBy, known)).toBe(counts));
  }

  test("a client whose key is known counts only sealed by itself: nobody speaks in its name", () => {
    const known = (id: string) => id === "c";
    expect(heartbeatCounts({ id: "c", role: "client", epoch: 3, activeEpoch: 3 }, null, servers, known)).toBe(false);
    expect(heartbeatCounts({ id: "c", role: "client", epoch: 3, activeEpoch: 3 }, "c", servers, known)).toBe(true);
    expect(heartbeatCounts({ id: "d", role: "client", epoch: 3, activeEpoch: 3 }, null, servers, known)).toBe(true);
  });

  test("a server knows itself and the partner its pairing names", () => {
    expect(serversKnownTo({ role: "main", id: "m" }, "b")).toEqual({ main: "m", backup: "b" });
    expect(serversKnownTo({ role: "backup", id: "b" }, null)).toEqual({ main: null, backup: "b" });
  });
});
