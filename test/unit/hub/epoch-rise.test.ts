/**
 * Two losses the simulator found (test/sim, seeds 12 and 238 of its first
 * Data Hub run): a hub serving again at a higher epoch, and a hub still at a
 * lower epoch than a returning node, each kept from subscribers a message a
 * publisher's node had seen acknowledged.
 */
import { describe, expect, test } from "bun:test";
import { DirectConnection, FakeHubServer } from "./hub-harness.ts";

const pub = (seq: number) => ({ type: "pub", topic: "studio/tally", data: seq, origin: "gfx-1", seq }) as const;

function subscriber(server: FakeHubServer, id: string, resumeFromEpoch?: number): DirectConnection {
  const c = new DirectConnection(server, id, null);
  c.send(resumeFromEpoch === undefined ? { type: "hello", id, name: id, kind: "node" } : { type: "hello", id, name: id, kind: "node", resumeFromEpoch });
  c.send({ type: "sub", filter: "studio/#" });
  if (resumeFromEpoch !== undefined) c.send({ type: "resync" });
  return c;
}

describe("a message acknowledged in one epoch", () => {
  test("resent to the same hub serving again at a higher epoch reaches the subscribers there (its first fan-out went into a partition)", () => {
    const main = new FakeHubServer({ epoch: 1, writable: true, streamId: "M" });
    const publisher = new DirectConnection(main, "p");
    publisher.send(pub(1));
    expect(publisher.of("ack")).toHaveLength(1);
    // The main was cut off: nobody got it; the main stops, the backup serves epoch 2, the main comes back at 3.
    main.hub.setWritable(false);
    publisher.close();
    main.hub.setEpoch(3);
    main.hub.setWritable(true);
    const viewer = subscriber(main, "v", 2);
    const again = new DirectConnection(main, "p2", { id: "p", kind: "node" });
    again.send(pub(1)); // the publisher's node resends what was acknowledged (acked-writes.ts)
    expect(viewer.of("msg").map((m) => m.seq)).toEqual([1]);
    expect(again.of("ack")).toHaveLength(1);
  });

  test("reaches a node coming back from a higher epoch to a hub that kept serving a lower one", () => {
    const main = new FakeHubServer({ epoch: 1, writable: true, streamId: "M" });
    const publisher = new DirectConnection(main, "p");
    // The node left for the backup (epoch 2) while the main was frozen; the main then took these; the backup died.
    publisher.send(pub(1));
    publisher.send(pub(2));
    const viewer = subscriber(main, "v", 2);
    expect(viewer.of("msg").map((m) => m.seq)).toEqual([1, 2]);
  });
});
