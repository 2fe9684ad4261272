import { expect, test } from "bun:test";
import { join } from "node:path";

const MODULE = join(import.meta.dir, "../../../src/services/mqtt-packet-debug.ts");

/** What a process started with `env` gets from the module for one namespace (DEBUG is read once, at start, as debug does). */
function debugIn(debug: string | null): { enabled: unknown; namespace: unknown; getter: boolean } {
  const script = `const d = require(${JSON.stringify(MODULE)})("mqtt-packet:parser"); d("parse: %s", "x"); console.log(JSON.stringify({ enabled: d.enabled, namespace: d.namespace, getter: typeof Object.getOwnPropertyDescriptor(d, "enabled").get === "function" }));`;
  const env: Record<string, string | undefined> = { ...process.env };
  delete env.DEBUG;
  if (debug !== null) env.DEBUG = debug;
  const run = Bun.spawnSync([process.execPath, "-e", script], { env, stderr: "pipe" });
  return JSON.parse(run.stdout.toString());
}

test("without DEBUG, mqtt-packet's debug is a plain function that does nothing and says it is off (not the real module's)", () => {
  expect(debugIn(null)).toEqual({ enabled: false, namespace: "mqtt-packet:parser", getter: false });
});

test("with DEBUG naming it, the real module's debug, switched on, so DEBUG=mqtt-packet:* prints as before", () => {
  const run = Bun.spawnSync([process.execPath, "-e", `require(${JSON.stringify(MODULE)})("mqtt-packet:parser")("parse: current state: %s", "header")`], {
    env: { ...process.env, DEBUG: "mqtt-packet:*" },
    stderr: "pipe",
  });
  expect(run.stderr.toString()).toContain("mqtt-packet:parser parse: current state: header");
  expect(debugIn("mqtt-packet:*")).toEqual({ enabled: true, namespace: "mqtt-packet:parser", getter: true });
});
