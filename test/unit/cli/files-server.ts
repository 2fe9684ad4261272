/**
 * An in-process `/files` server for the command-line tests: the real
 * FilesService over real stores in a temp dir, behind the real secure socket,
 * with the two things a test steers: whether the backup serves (read-only) and
 * what the backup answers about a push.
 */
import { secureDialer } from "../../../src/net/peer-net.ts";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import nacl from "tweetnacl";
import { formatNetworkKey } from "../../../src/core/keys.ts";
import { FilesService, type FilesMode } from "../../../src/services/files-service.ts";
import { newServerSocketData, secureServerHandlers } from "../../../src/net/secure-socket.ts";
import type { PushResult } from "../../../src/services/show-file-protocol.ts";
import { databasePath, openDatabase } from "../../../src/store/database.ts";
import { createStores, type Stores } from "../../../src/store/stores.ts";

export class TestShowFiles {
  readOnly = false;
  replicated: PushResult["replicated"] = "none";
  /** Chunks offered to the (pretend) backup as they arrived. */
  readonly offered: string[] = [];
  constructor(readonly stores: Stores) {}

  get head(): number {
    return this.stores.showFile.head();
  }
}

/** Starts the server on port 0; `flags` are the --node and --key a command needs to reach it; `stop` removes everything. */
export function startFilesServer() {
  const networkKey = nacl.randomBytes(32);
  const options = { networkKey, machine: nacl.sign.keyPair() };
  const dataDir = mkdtempSync(join(tmpdir(), "understudy-files-server-"));
  const db = openDatabase(databasePath(dataDir));
  // Revision N is made on 2030-01-N, so the log's lines are fixed.
  let show: TestShowFiles | null = null;
  const stores = createStores(db, () => Date.UTC(2030, 0, (show?.head ?? 0) + 1));
  show = new TestShowFiles(stores);
  const shown = show;
  const service = new FilesService({
    mode: () => (shown.readOnly ? { kind: "read-only" } : { kind: "serve" }),
    stores,
    replication: {
      offerChunk: (hash) => void shown.offered.push(hash),
      waitApplied: async () => shown.replicated,
    },
    syncTimeoutMs: 500,
    net: secureDialer(options),
  });
  const server = serveFiles(options, service);
  const keyDir = mkdtempSync(join(tmpdir(), "understudy-key-"));
  const keyFile = join(keyDir, "network.key");
  writeFileSync(keyFile, formatNetworkKey(networkKey));
  const stop = () => {
    server.stop(true);
    db.close();
    rmSync(keyDir, { recursive: true, force: true });
    rmSync(dataDir, { recursive: true, force: true });
  };
  return { show: shown, server, stop, dataDir, networkKey, flags: ["--node", `127.0.0.1:${server.port}`, "--key", keyFile] };
}

/**
 * A client's node in front of the files server: it forwards every call to it, and counts the
 * calls it answered (each asks the mode once). `--node` goes to the node; the key file stays.
 */
export function startForwardingNode(main: ReturnType<typeof startFilesServer>) {
  const options = { networkKey: main.networkKey, machine: nacl.sign.keyPair() };
  const calls = { count: 0 };
  const service = new FilesService({
    mode: (): FilesMode => {
      calls.count++;
      return { kind: "forward", to: { host: "127.0.0.1", port: main.server.port! } };
    },
    stores: null,
    replication: null,
    syncTimeoutMs: 500,
    net: secureDialer(options),
  });
  const server = serveFiles(options, service);
  const flags = [...main.flags];
  flags[1] = `127.0.0.1:${server.port}`;
  return { calls, flags, stop: () => server.stop(true) };
}

function serveFiles(options: { networkKey: Uint8Array; machine: nacl.SignKeyPair }, service: FilesService) {
  return Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch(request, srv) {
      return srv.upgrade(request, { data: newServerSocketData(options, "client", "/files") }) ? undefined : new Response("no", { status: 400 });
    },
    websocket: secureServerHandlers(options, (connection) => service.accept(connection), () => {}),
  });
}
