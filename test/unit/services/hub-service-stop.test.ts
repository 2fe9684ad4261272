/**
 * A hub that stops serving, or takes a new network key, sends what it had gathered for a
 * connection (an ack, a delivery) before it closes it: a publisher that never hears its ack
 * sends the message again to the next server, and a subscriber misses nothing it was owed.
 */
import { expect, test } from "bun:test";
import nacl from "tweetnacl";
import { HubCore } from "../../../src/hub/hub-core.ts";
import { createLogger } from "../../../src/log.ts";
import { HubService } from "../../../src/services/hub-service.ts";
import { RecordingConnection } from "../../support/recording-connection.ts";

const log = createLogger(() => "json", () => {});
const encoder = new TextEncoder();

/** The frame types sent on `connection`: a RecordingConnection keeps only what was sent while it was open. */
const sentTypes = (connection: RecordingConnection) => connection.sent.map((f) => JSON.parse(f).type as string);

for (const [name, stop] of [
  ["stopServing", (hub: HubService) => hub.stopServing()],
  ["setNetworkKey", (hub: HubService) => hub.setNetworkKey(nacl.randomBytes(32))],
] as const) {
  test(`${name}: the ack and the delivery gathered this turn go out before the close`, () => {
    // Gathered frames are sent at a turn's end that never comes here: only the stop can send them.
    const hub = new HubService(new HubCore({ epoch: 1, writable: true }), nacl.randomBytes(32), log, { defer: () => () => {} });
    const publisher = new RecordingConnection(null, "p");
    const subscriber = new RecordingConnection(null, "s");
    const fromPublisher = hub.acceptHub(publisher);
    const fromSubscriber = hub.acceptHub(subscriber);
    const frames = (...list: object[]) => encoder.encode(list.map((f) => JSON.stringify(f)).join("\n"));
    fromPublisher.message(frames({ type: "hello", id: "p", name: "publisher", kind: "node" }));
    fromSubscriber.message(frames({ type: "hello", id: "s", name: "subscriber", kind: "node" }, { type: "sub", filter: "t" }));
    fromPublisher.message(frames({ type: "pub", topic: "t", data: 1, origin: "o", seq: 1 }));
    stop(hub);
    expect(publisher.closedBy).not.toBeNull();
    expect(subscriber.closedBy).not.toBeNull();
    expect(sentTypes(publisher).filter((type) => type === "ack")).toEqual(["ack"]);
    expect(sentTypes(subscriber).filter((type) => type === "msg")).toEqual(["msg"]);
  });
}
