/**
 * A machine that holds the network key and answers `/files` at the address a command names as its
 * main, saying whatever a test tells it to: the puller must check every answer as the main would.
 */
import nacl from "tweetnacl";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { formatNetworkKey } from "../../../src/core/keys.ts";
import { rpcServer, type RpcHandler } from "../../../src/net/rpc.ts";
import { serveBarePeer } from "../../support/peer-identity.ts";

export function startLyingMain(handlers: Record<string, RpcHandler>) {
  const networkKey = nacl.randomBytes(32);
  const options = { networkKey, machine: nacl.sign.keyPair() };
  const all: Record<string, RpcHandler> = { "files.route": () => ({ forwardTo: null }), ...handlers };
  const server = serveBarePeer(options, (connection) => rpcServer(connection, all), { path: "/files" });
  const keyDir = mkdtempSync(join(tmpdir(), "understudy-lying-key-"));
  const keyFile = join(keyDir, "network.key");
  writeFileSync(keyFile, formatNetworkKey(networkKey));
  const stop = () => {
    server.stop(true);
    rmSync(keyDir, { recursive: true, force: true });
  };
  return { stop, flags: ["--node", `127.0.0.1:${server.port}`, "--key", keyFile] };
}
