/** An in-process machine for HTTP tests: the real MachineNode on port 0 with a temp data dir. */
import { afterEach } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import nacl from "tweetnacl";
import { formatNetworkKey } from "../../src/core/keys.ts";
import type { LicenseType } from "../../src/core/license.ts";
import type { ConfigKey } from "../../src/core/config.ts";
import { createLogger } from "../../src/log.ts";
import { MachineNode } from "../../src/machine/machine-node.ts";
import { DEV_VENDOR_PUBLIC_KEY, devLicenseText } from "./licenses.ts";
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

/** A data dir with a license of `type` and the network key `key`, as the setup pages leave it. */
export function setUpDataDir(key: Uint8Array = nacl.randomBytes(32), type: LicenseType = "server-with-failover"): string {
  const dir = tempDir();
  writeFileSync(join(dir, "license.json"), devLicenseText({ type, holder: "*", days: 30 }), { mode: 0o600 });
  writeFileSync(join(dir, "network.key"), formatNetworkKey(key), { mode: 0o600 });
  return dir;
}

/** The first SSE message of a machine's live stream at `path` (then the stream is cancelled). */
export async function firstEvent(n: MachineNode, path: string): Promise<{ status: number; type: string | null; text: string }> {
  const controller = new AbortController();
  const response = await n.app.request(`http://localhost${path}`, { signal: controller.signal });
  if (!response.body) return { status: response.status, type: response.headers.get("content-type"), text: "" };
  const reader = response.body.getReader();
  let text = "";
  while (!text.includes("\n\n")) {
    const { value, done } = await reader.read();
    if (done) break;
    text += new TextDecoder().decode(value);
  }
  await reader.cancel();
  controller.abort();
  return { status: response.status, type: response.headers.get("content-type"), text };
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
