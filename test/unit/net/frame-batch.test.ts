import { expect, test } from "bun:test";
import { FrameBatcher, splitFrames } from "../../../src/net/frame-batch.ts";
import { waitFor } from "../../support/wait-for.ts";

const texts = (payloads: Uint8Array[]) => payloads.map((p) => splitFrames(p));

test("frames pushed while the loop is busy go out as one message, in order, and split back exactly", async () => {
  const sent: Uint8Array[] = [];
  const batch = new FrameBatcher((p) => sent.push(p));
  const frames = [JSON.stringify({ a: "line\nbreak" }), JSON.stringify({ b: 2 }), JSON.stringify("x")];
  for (const f of frames) batch.push(f);
  expect(sent).toEqual([]);
  await waitFor("the batch", () => sent.length === 1);
  expect(texts(sent)).toEqual([frames]);
  expect(JSON.parse(splitFrames(sent[0]!)[0]!)).toEqual({ a: "line\nbreak" });
});

test("a batch past its size goes at once; flush sends what is gathered; clear drops it", async () => {
  const sent: Uint8Array[] = [];
  const batch = new FrameBatcher((p) => sent.push(p), 10);
  batch.push("123456");
  batch.push("789012");
  expect(texts(sent)).toEqual([["123456", "789012"]]);
  batch.push("a");
  batch.flush();
  expect(texts(sent).at(-1)).toEqual(["a"]);
  batch.push("lost");
  batch.clear();
  await Bun.sleep(5);
  expect(sent).toHaveLength(2);
});

test("an injected end of turn (the simulator's) sends the batch when it runs, once, and a flush cancels it", () => {
  const turns: (() => void)[] = [];
  let cancelled = 0;
  const defer = (run: () => void) => {
    turns.push(run);
    return () => void (cancelled += 1);
  };
  const sent: Uint8Array[] = [];
  const batch = new FrameBatcher((p) => sent.push(p), undefined, defer);
  batch.push("a");
  batch.push("b");
  expect(turns).toHaveLength(1);
  expect(sent).toEqual([]);
  turns[0]!();
  expect(texts(sent)).toEqual([["a", "b"]]);
  batch.push("c");
  batch.flush();
  expect(cancelled).toBe(2);
  expect(texts(sent).at(-1)).toEqual(["c"]);
});
