/**
 * The front door's line into its broker: what the bounds say it holds, and what a
 * subscriber hears when it did not keep up (mqtt-delivery-line.ts).
 */
import { describe, expect, test } from "bun:test";
import { DeliveryLine, type Delivery, type DeliveryLineLimits } from "../../../src/services/mqtt-delivery-line.ts";

const encoder = new TextEncoder();
const msg = (n: number, retain = false): Delivery => ({ topic: `t/${n}`, payload: encoder.encode(`{"n":${n}}`), retain });

/** A broker that holds every publish until the test calls `deliver`. */
function heldBroker(limits: DeliveryLineLimits) {
  const handed: { delivery: Delivery; done: () => void }[] = [];
  const line = new DeliveryLine(
    (delivery, done) => handed.push({ delivery, done }),
    (missed) => ({ topic: "$understudy/gap", payload: encoder.encode(JSON.stringify(missed)), retain: false }),
    limits,
  );
  const delivered: Delivery[] = [];
  const deliverAll = () => {
    const out: string[] = [];
    while (handed.length > 0) {
      const next = handed.shift()!;
      delivered.push(next.delivery);
      out.push(next.delivery.topic);
      next.done();
    }
    return out;
  };
  return { line, handed, deliverAll, delivered };
}

describe("DeliveryLine", () => {
  test("hands the broker at most maxInFlight at once and the rest in order as it delivers", () => {
    const { line, handed, deliverAll } = heldBroker({ maxInFlight: 3, maxWaiting: 100, maxWaitingBytes: 1 << 20 });
    for (let n = 1; n <= 10; n++) line.push(msg(n));
    expect(handed.length).toBe(3);
    expect(line.size).toBe(7);
    const order: string[] = [];
    while (handed.length > 0) order.push(...deliverAll());
    expect(order).toEqual(Array.from({ length: 10 }, (_, i) => `t/${i + 1}`));
    expect(line.size).toBe(0);
    expect(line.delivering).toBe(0);
    expect(line.dropped).toBe(0);
  });

  test("past its count bound it drops, then tells the subscribers how many they missed before the next message", () => {
    const { line, handed, deliverAll } = heldBroker({ maxInFlight: 1, maxWaiting: 2, maxWaitingBytes: 1 << 20 });
    for (let n = 1; n <= 6; n++) line.push(msg(n));
    // 1 handed over, 2 and 3 waiting, 4-6 dropped: the line never held more than its bound.
    expect(line.size).toBe(2);
    expect(line.dropped).toBe(3);
    const order: string[] = [];
    while (handed.length > 0) order.push(...deliverAll());
    line.push(msg(7));
    const gap = handed[0]!.delivery;
    while (handed.length > 0) order.push(...deliverAll());
    expect(order).toEqual(["t/1", "t/2", "t/3", "$understudy/gap", "t/7"]);
    expect(JSON.parse(new TextDecoder().decode(gap.payload)).missed).toBe(3);
    // Said once: later messages come without another notice.
    line.push(msg(8));
    expect(deliverAll()).toEqual(["t/8"]);
  });

  test("the byte bound counts topic and payload, and refuses what would pass it", () => {
    const one = msg(1);
    const size = one.topic.length + one.payload.length;
    const { line } = heldBroker({ maxInFlight: 1, maxWaiting: 1000, maxWaitingBytes: 2 * size });
    for (let n = 1; n <= 5; n++) line.push(msg(n));
    expect(line.waitingBytes).toBeLessThanOrEqual(2 * size);
    expect(line.size).toBe(2);
    expect(line.dropped).toBe(2);
  });

  test("a retained value is never dropped: past the bound it waits aside, the newest per key, and goes in once there is room", () => {
    const { line, handed, deliverAll, delivered } = heldBroker({ maxInFlight: 1, maxWaiting: 1, maxWaitingBytes: 1 << 20 });
    const value = (key: string, v: number): Delivery => ({ topic: key, payload: encoder.encode(String(v)), retain: true });
    line.push(msg(1));
    line.push(msg(2));
    line.push(value("k/a", 1));
    line.push(value("k/b", 1));
    line.push(value("k/a", 2));
    expect(line.dropped).toBe(0);
    expect(line.aside).toBe(2);
    const order: string[] = [];
    while (handed.length > 0) order.push(...deliverAll());
    // k/a's older value never reaches the broker; its newest does, after k/b (which waited longer).
    expect(order).toEqual(["t/1", "t/2", "k/b", "k/a"]);
    expect(delivered.slice(2).map((d) => new TextDecoder().decode(d.payload))).toEqual(["1", "2"]);
    expect(line.aside).toBe(0);
  });

  test("a retained value larger than the byte bound still goes in, alone", () => {
    const { line, handed, deliverAll } = heldBroker({ maxInFlight: 1, maxWaiting: 10, maxWaitingBytes: 12 });
    line.push(msg(1));
    line.push({ topic: "k/big", payload: encoder.encode("x".repeat(100)), retain: true });
    const order: string[] = [];
    while (handed.length > 0) order.push(...deliverAll());
    expect(order).toEqual(["t/1", "k/big"]);
  });

  test("a broker that calls back at once (no subscribers) drains a long line without recursing per message", () => {
    let delivered = 0;
    const line = new DeliveryLine(
      (_delivery, done) => {
        delivered++;
        done();
      },
      (missed) => ({ topic: "gap", payload: encoder.encode(String(missed.missed)), retain: false }),
      { maxInFlight: 1, maxWaiting: 200_000, maxWaitingBytes: 1 << 30 },
    );
    for (let n = 1; n <= 100_000; n++) line.push(msg(n));
    expect(delivered).toBe(100_000);
    expect(line.delivering).toBe(0);
  });

  test("a done called twice counts once", () => {
    const dones: (() => void)[] = [];
    const line = new DeliveryLine((_d, done) => dones.push(done), () => msg(0), { maxInFlight: 2, maxWaiting: 10, maxWaitingBytes: 1 << 20 });
    for (let n = 1; n <= 4; n++) line.push(msg(n));
    dones[0]!();
    dones[0]!();
    expect(line.delivering).toBe(2);
    expect(dones.length).toBe(3);
  });
});
