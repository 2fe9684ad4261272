import { expect, test } from "bun:test";
import { MAX_CACHED_TOPICS, SubscriptionIndex } from "../../../src/hub/subscription-index.ts";

test("a topic's remembered subscribers follow every change of the subscriptions", () => {
  const index = new SubscriptionIndex<string>();
  index.add("cam/+/tally", "a");
  expect(index.match("cam/1/tally")).toEqual(["a"]);
  index.add("cam/#", "b");
  expect([...index.match("cam/1/tally")].sort()).toEqual(["a", "b"]);
  index.add("cam/#", "a"); // a second filter of the same subscriber: still once
  expect([...index.match("cam/1/tally")].sort()).toEqual(["a", "b"]);
  index.remove("cam/#", "b");
  expect(index.match("cam/1/tally")).toEqual(["a"]);
  index.remove("cam/+/tally", "a");
  index.remove("cam/#", "a");
  expect(index.match("cam/1/tally")).toEqual([]);
});

test("more topics than it remembers still match right", () => {
  const index = new SubscriptionIndex<string>();
  index.add("t/+", "s");
  for (let i = 0; i < MAX_CACHED_TOPICS + 10; i++) expect(index.match(`t/${i}`)).toEqual(["s"]);
  expect(index.match("u/1")).toEqual([]);
});
