/** An in-process machine for HTTP tests: the real MachineNode on port 0 with a temp data dir. */
import { afterEach } from "bun:test";
import type { ConfigKey } from "../../src/core/config.ts";
import { createLogger } from "../../src/log.ts";
import { MachineNode } from "../../src/machine/machine-node.ts";
import { DEV_VENDOR_PUBLIC_KEY } from "./licenses.ts";
import { tempDir } from "./machine-process.ts";

export async function startNode(opts: { dataDir?: string; flags?: Partial<Record<ConfigKey, string>>; env?: Record<string, string> } = {}) {
  const lines: string[] = [];
  const dataDir = opts.dataDir ?? tempDir();
  const node = await MachineNode.start({
    dataDir,
    flags: { uiListen: "127.0.0.1:0", peerListen: "127.0.0.1:0", mqttListen: "off", discovery: "off", ...opts.flags },
    env: opts.env ?? {},
    vendorPublicKey: DEV_VENDOR_PUBLIC_KEY,
    log: createLogger(() => "json", (line) => lines.push(line)),
  });
  return { node, dataDir, lines };
}

/** startNode for a test file: every machine it starts is stopped after each test. */
export function nodesPerTest() {
  const running: MachineNode[] = [];
  afterEach(async () => {
    for (const node of running.splice(0)) await node.stop();
  });
  return async function fresh(opts: Parameters<typeof startNode>[0] = {}) {
    const started = await startNode(opts);
    running.push(started.node);
    return started;
  };
}

/** A form POST as the browser sends it from the page (same origin, so CSRF passes). */
export function formPost(node: MachineNode, path: string, fields: Record<string, string | File>, headers: Record<string, string> = {}) {
  const body = new FormData();
  for (const [k, v] of Object.entries(fields)) body.append(k, v);
  return node.app.request(`http://localhost${path}`, { method: "POST", body, headers: { origin: "http://localhost", ...headers } });
}
