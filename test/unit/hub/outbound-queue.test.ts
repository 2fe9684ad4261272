import { describe, expect, test } from "bun:test";
import { OutboundQueue, encodeWrite, type QueuedWrite } from "../../../src/hub/outbound-queue.ts";
import { utf8ByteLength } from "../../../src/hub/frames.ts";

const pub = (origin: string, seq: number): QueuedWrite => ({ type: "pub", topic: "t", data: { seq }, origin, seq });
const seqsOf = (queue: OutboundQueue<string>) => {
  const sent: string[] = [];
  for (let entry = queue.nextToSend(); entry; entry = queue.nextToSend()) sent.push(`${entry.frame.origin}${entry.frame.seq}`);
  return sent;
};

describe("OutboundQueue", () => {
  test("a write is encoded once: its text is what is counted and what is sent", () => {
    const write = encodeWrite({ type: "pub", topic: "t", data: "é", origin: "a", seq: 1 });
    expect(JSON.parse(write.text)).toEqual(write.frame);
    expect(write.bytes).toBe(utf8ByteLength(write.text));
    const queue = new OutboundQueue<string>();
    queue.offer(write, "app");
    expect(queue.bytes).toBe(write.bytes);
    expect(queue.nextToSend()?.text).toBe(write.text);
  });

  test("sends in publish order within the window; an ack makes room", () => {
    const queue = new OutboundQueue<string>(100, 1 << 20, 2);
    for (const [origin, seq] of [["a", 1], ["b", 1], ["a", 2]] as const) queue.offer(encodeWrite(pub(origin, seq)), "app");
    expect(seqsOf(queue)).toEqual(["a1", "b1"]);
    expect(queue.take("a", 1)?.frame.seq).toBe(1);
    expect(seqsOf(queue)).toEqual(["a2"]);
    expect(queue.has("a", 2) && !queue.has("a", 1)).toBe(true);
  });

  test("after a switch everything unacknowledged goes again, in order, also when acks came out of order", () => {
    const queue = new OutboundQueue<string>();
    for (let seq = 1; seq <= 5; seq++) queue.offer(encodeWrite(pub("a", seq)), "app");
    expect(seqsOf(queue)).toHaveLength(5);
    queue.take("a", 2);
    queue.take("a", 4);
    queue.rewind();
    expect(seqsOf(queue)).toEqual(["a1", "a3", "a5"]);
    expect(queue.size).toBe(3);
    expect(queue.inFlight).toBe(3);
  });

  test("bounded by frames and bytes: a write that does not fit is not added", () => {
    const write = encodeWrite(pub("a", 1));
    const byFrames = new OutboundQueue<string>(1);
    expect(byFrames.offer(write, "x")).toBe(true);
    expect(byFrames.offer(encodeWrite(pub("a", 2)), "x")).toBe(false);
    const byBytes = new OutboundQueue<string>(10, write.bytes);
    expect(byBytes.offer(write, "x")).toBe(true);
    expect(byBytes.offer(encodeWrite(pub("a", 2)), "x")).toBe(false);
  });

  test("many writes taken behind one the hub has not answered yet: the rest still go, in order, and none is lost", () => {
    const queue = new OutboundQueue<string>(20_000, 1 << 30, 6_000);
    for (let seq = 1; seq <= 10_000; seq++) queue.offer(encodeWrite(pub("a", seq)), "app");
    expect(seqsOf(queue)).toHaveLength(6_000);
    for (let seq = 2; seq <= 6_000; seq++) queue.take("a", seq); // acked or refused out of order; a1 still waits
    expect(queue.size).toBe(4_001);
    const rest = Array.from({ length: 4_000 }, (_, i) => `a${6_001 + i}`);
    expect(seqsOf(queue)).toEqual(rest);
    queue.rewind();
    expect(seqsOf(queue)).toEqual(["a1", ...rest]);
  });
});
