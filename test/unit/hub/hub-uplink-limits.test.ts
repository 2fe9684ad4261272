/** Finding 7: the subscription limit belonged to the node, so one app holding it blocked every other app on the machine. */
import { expect, test } from "bun:test";
import { DEFAULT_MAX_FILTERS, DEFAULT_MAX_FILTERS_PER_APP } from "../../../src/hub/uplink-options.ts";
import { DEFAULT_HUB_LIMITS } from "../../../src/hub/hub-core.ts";
import { FakeHubServer, FakeNode, Wire, settle } from "./hub-harness.ts";

const sub = (filter: string) => ({ type: "sub", filter }) as const;

test("an app that used its share is refused; another app on the same node still subscribes", () => {
  const node = new FakeNode("n", { maxFiltersPerApp: 3, maxFilters: 10 });
  for (let i = 0; i < 3; i++) expect(node.app("greedy", sub(`a/${i}`))).toBeNull();
  expect(node.app("greedy", sub("a/3"))?.message).toBe("An app may hold at most 3 subscriptions on this node; unsubscribe some first.");
  expect(node.app("greedy", sub("a/0"))).toBeNull(); // the same filter again is not a new one
  expect(node.app("other", sub("b/0"))).toBeNull();
  expect(node.app("other", sub("a/0"))).toBeNull(); // shared with greedy: counts for other too
});

test("unsubscribing or leaving gives the share back", () => {
  const node = new FakeNode("n", { maxFiltersPerApp: 2, maxFilters: 10 });
  node.app("app", sub("a"));
  node.app("app", sub("b"));
  expect(node.app("app", sub("c"))?.code).toBe("LIMIT_REACHED");
  node.app("app", { type: "unsub", filter: "a" });
  expect(node.app("app", sub("c"))).toBeNull();
  node.uplink.appGone("app");
  node.app("app", sub("x"));
  expect(node.app("app", sub("y"))).toBeNull();
});

test("the node's total still bounds what it asks of the hub", () => {
  const node = new FakeNode("n", { maxFiltersPerApp: 5, maxFilters: 6 });
  for (let i = 0; i < 5; i++) node.app("one", sub(`a/${i}`));
  expect(node.app("two", sub("b/0"))).toBeNull();
  expect(node.app("two", sub("b/1"))?.message).toContain("at most 6 distinct subscriptions for all its apps together");
});

test("by default, one app at its limit leaves room for others, and the hub takes a whole node's filters", () => {
  expect(DEFAULT_MAX_FILTERS_PER_APP).toBeLessThan(DEFAULT_MAX_FILTERS);
  expect(DEFAULT_HUB_LIMITS.maxFiltersPerConnection).toBeGreaterThanOrEqual(DEFAULT_MAX_FILTERS);
  const hub = new FakeHubServer({ epoch: 1, writable: true });
  const node = new FakeNode("n");
  const wire = new Wire(node, hub);
  for (let i = 0; i < DEFAULT_MAX_FILTERS_PER_APP; i++) node.app("greedy", sub(`g/${i}`));
  expect(node.app("other", sub("o/1"))).toBeNull();
  settle(wire);
  expect(node.of("other", "error")).toEqual([]);
  expect(node.of("greedy", "error")).toEqual([]);
});
