import { expect, test } from "bun:test";
import { HubCore } from "../../../src/hub/hub-core.ts";
import { HubUplink } from "../../../src/hub/hub-uplink.ts";

test("a node's measured round trip reaches the hub's presence list", () => {
  const core = new HubCore({ epoch: 1, writable: true });
  const uplink = new HubUplink({ node: { id: "render-1", name: "Render 1" }, deliver: () => {} });
  let now = 0;
  core.attach("c1", (frame) => uplink.onFrameFromServer(frame, now));
  uplink.attachServer((frame) => void core.receive("c1", frame));
  expect(core.members().find((m) => m.id === "render-1")?.delayMs).toBeNull();
  now = 150;
  uplink.ping(100);
  expect(uplink.delayMs).toBe(50);
  uplink.ping(1000);
  expect(core.members().find((m) => m.id === "render-1")?.delayMs).toBe(50);
});
