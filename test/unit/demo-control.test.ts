import { expect, test } from "bun:test";
import { demoControl } from "../demo-control.tsx";

function demo() {
  let running = true;
  const calls: string[] = [];
  const app = demoControl({
    machines: [
      { name: "main", role: "main", ui: "http://127.0.0.1:1", running: () => running },
      { name: "backup", role: "backup", ui: "http://127.0.0.1:2", running: () => true },
    ],
    switches: [
      {
        name: "main",
        label: "main server",
        stop: async () => {
          calls.push("stop");
          running = false;
        },
        start: async () => {
          calls.push("start");
          running = true;
        },
      },
      { name: "render-1", label: "render-1", stop: async () => void calls.push("stop render-1"), start: async () => void calls.push("start render-1") },
    ],
    router: () => ["Destination 5 ← source 1 (render-1)"],
  });
  const post = (path: string, origin = "http://localhost") => app.request(`http://localhost${path}`, { method: "POST", headers: { origin, "content-type": "application/x-www-form-urlencoded" }, body: "" });
  return { app, calls, post };
}

test("the demo page stops and starts the main server with plain forms", async () => {
  const { app, calls, post } = demo();
  let page = await (await app.request("http://localhost/")).text();
  expect(page).toContain('data-testid="main-state">running');
  expect(page).toContain('<iframe src="http://127.0.0.1:2/machines"');
  const stopped = await post("/main/stop");
  expect(stopped.status).toBe(303);
  expect(stopped.headers.get("location")).toBe("/");
  page = await (await app.request("http://localhost/")).text();
  expect(page).toContain('data-testid="main-state">stopped');
  expect((await post("/main/start")).status).toBe(303);
  expect(calls).toEqual(["stop", "start"]);
});

test("the demo page stops and starts render-1 and shows the simulated router's routes", async () => {
  const { app, calls, post } = demo();
  const page = await (await app.request("http://localhost/")).text();
  expect(page).toContain("Stop render-1");
  expect(page).toContain("Destination 5 ← source 1 (render-1)");
  expect((await post("/render-1/stop")).status).toBe(303);
  expect((await post("/render-1/start")).status).toBe(303);
  expect(calls).toEqual(["stop render-1", "start render-1"]);
});

test("a button pressed from another site does nothing (CSRF), an unknown action is 404", async () => {
  const { calls, post } = demo();
  expect((await post("/main/stop", "http://evil.example")).status).toBe(403);
  expect((await post("/render-1/stop", "http://evil.example")).status).toBe(403);
  expect((await post("/backup/stop")).status).toBe(404);
  expect(calls).toEqual([]);
});
