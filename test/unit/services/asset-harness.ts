/**
 * In-process `/assets` nodes for the Asset Hub tests: the real secure socket,
 * rpc, bulk lane and AssetService over a temp-dir SQLite AssetStore (or no
 * store, for a forwarding client node). Port 0 on loopback; `stop()` cleans up.
 */
import { parseHostPort } from "../../../src/core/config.ts";
import { secureDialer } from "../../../src/net/peer-net.ts";
import type { Database } from "bun:sqlite";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import nacl from "tweetnacl";
import { formatNetworkKey } from "../../../src/core/keys.ts";
import { AssetClient, ASSET_PATH } from "../../../src/services/asset-protocol.ts";
import { AssetService, type AssetMode, type Replicated } from "../../../src/services/asset-service.ts";
import type { ChunkBudget } from "../../../src/services/chunk-gate.ts";
import { connectSecure, type SecureConnection } from "../../../src/net/secure-socket.ts";
import { databasePath, openDatabase } from "../../../src/store/database.ts";
import { createStores, type Stores } from "../../../src/store/stores.ts";
import { serveBarePeer } from "../../support/peer-identity.ts";

export type AssetNode = {
  address: string;
  mode: AssetMode;
  db: Database | null;
  stores: Stores | null;
  /** Chunks the store took (putChunkAsync), by chunk index, in the order they finished. */
  putChunks: number[];
  /** Resolves once every chunk put under way has finished: one cut off by a dropped connection still finishes on its own. */
  putsSettled(): Promise<void>;
  /** Runs after each chunk is stored (e.g. to cut the connection mid-upload). */
  afterChunk: (count: number) => void;
  /** Closes every connection the node has accepted (the listener stays). */
  dropConnections(): void;
  stop(): void;
};

export function startAssetNode(
  networkKey: Uint8Array,
  options: { store?: boolean; mode?: AssetMode; forwardTo?: () => string | null; afterCommit?: (seq: number) => Promise<Replicated>; chunkBudget?: ChunkBudget } = {},
): AssetNode {
  const dir = options.store === false ? null : mkdtempSync(join(tmpdir(), "understudy-asset-node-"));
  const db = dir ? openDatabase(databasePath(dir)) : null;
  const stores = db ? createStores(db, { now: () => 1_700_000_000_000 }) : null;
  const secure = { networkKey, machine: nacl.sign.keyPair() };
  const connections = new Set<SecureConnection>();
  /** Chunk puts under way, settled either way. */
  const underWay = new Set<Promise<void>>();
  const node: AssetNode = {
    address: "",
    mode: options.mode ?? "serve",
    db,
    stores,
    putChunks: [],
    putsSettled: async () => {
      while (underWay.size > 0) await Promise.all(underWay);
    },
    afterChunk: () => {},
    dropConnections: () => {
      for (const c of connections) c.close(1001, "dropped by the test");
    },
    stop: () => {
      server.stop(true);
      db?.close();
      if (dir) rmSync(dir, { recursive: true, force: true });
    },
  };
  if (stores) {
    // The service stores chunks with putChunkAsync (hashed on a worker, written on the I/O threads).
    const put = stores.assets.putChunkAsync.bind(stores.assets);
    stores.assets.putChunkAsync = (id, idx, bytes) => {
      const putting = put(id, idx, bytes).then((result) => {
        node.putChunks.push(idx);
        node.afterChunk(node.putChunks.length);
        return result;
      });
      const settled = putting.then(
        () => {},
        () => {},
      );
      underWay.add(settled);
      void settled.then(() => underWay.delete(settled));
      return putting;
    };
  }
  const service = new AssetService({
    mode: () => node.mode,
    assets: stores?.assets ?? null,
    forwardTo: () => parseHostPort(options.forwardTo?.() ?? ""),
    net: secureDialer(secure),
    ...(options.afterCommit ? { afterCommit: options.afterCommit } : {}),
    ...(options.chunkBudget ? { chunkBudget: options.chunkBudget } : {}),
  });
  const server = serveBarePeer(
    secure,
    (connection) => {
      connections.add(connection);
      const events = service.accept(connection);
      return {
        ...events,
        close: (reason) => {
          connections.delete(connection);
          events.close(reason);
        },
      };
    },
    { path: ASSET_PATH },
  );
  node.address = `127.0.0.1:${server.port}`;
  return node;
}

export async function connectAssets(address: string, networkKey: Uint8Array): Promise<AssetClient> {
  const client = new AssetClient();
  return client.attach(await connectSecure(address, ASSET_PATH, { networkKey, machine: nacl.sign.keyPair() }, () => client.events()));
}

/** A network key file for the command line's --key. */
export function writeKeyFile(networkKey: Uint8Array): { keyFile: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), "understudy-key-"));
  const keyFile = join(dir, "network.key");
  writeFileSync(keyFile, formatNetworkKey(networkKey));
  return { keyFile, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * Nodes started and clients connected for one test file, under one network key: `cleanups` holds
 * what each test opened (add your own), and `afterEach` should run `closeAll`.
 */
export function assetFixtures(networkKey: Uint8Array) {
  const cleanups: (() => void)[] = [];
  return {
    cleanups,
    node(options: Parameters<typeof startAssetNode>[1] = {}): AssetNode {
      const started = startAssetNode(networkKey, options);
      cleanups.push(() => started.stop());
      return started;
    },
    async client(at: AssetNode): Promise<AssetClient> {
      const c = await connectAssets(at.address, networkKey);
      cleanups.push(() => c.close());
      return c;
    },
    closeAll(): void {
      for (const cleanup of cleanups.splice(0).reverse()) cleanup();
    },
  };
}
