/**
 * How a command-line client reaches a node: `--node HOST:PORT` (default this
 * machine's peer port), the network key from `--key FILE` (default
 * DATA/network.key), and a fresh machine key pair per run, since a command is
 * not a machine of the network and keeps no identity.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import nacl from "tweetnacl";
import { DEFAULT_PEER_PORT, parseHostPort, type HostPort } from "../core/config.ts";
import { parseNetworkKey } from "../core/keys.ts";
import { secureDialer, type PeerDialer, type PeerPath } from "../net/peer-net.ts";
import type { ConnectionEvents, SecureConnection } from "../net/secure-socket.ts";
import { UsageError } from "./args.ts";
import { defaultDataDir } from "./run.ts";

export const DEFAULT_NODE = `127.0.0.1:${DEFAULT_PEER_PORT}`;

/** The flags every node-talking command accepts; spread into its parseCommand options. */
export const NODE_FLAGS = { node: { type: "string" }, key: { type: "string" }, data: { type: "string" } } as const;

export type NodeTarget = { at: HostPort; networkKey: Uint8Array };

/** Reads --node, --key and --data; a bad address or a missing key file is a UsageError. */
export function nodeTarget(values: Record<string, unknown>, env: Record<string, string | undefined> = process.env): NodeTarget {
  const address = typeof values.node === "string" ? values.node : DEFAULT_NODE;
  const at = parseHostPort(address);
  if (!at) throw new UsageError(`--node ${address}: expected HOST:PORT, e.g. ${DEFAULT_NODE}`);
  const keyFile = typeof values.key === "string" ? values.key : join(typeof values.data === "string" ? values.data : defaultDataDir(env), "network.key");
  if (!existsSync(keyFile)) throw new UsageError(`The network key file ${keyFile} does not exist (give it with --key FILE).`);
  return { at, networkKey: parseNetworkKey(readFileSync(keyFile, "utf8"), keyFile) };
}

/** Dials as an ephemeral machine: a fresh key pair for this run. */
export function nodeDialer(target: NodeTarget): PeerDialer {
  return secureDialer({ networkKey: target.networkKey, machine: nacl.sign.keyPair() });
}

/** Opens an authenticated connection to `target` at `path`, as an ephemeral machine. */
export function connectNode(target: NodeTarget, path: PeerPath, events: (connection: SecureConnection) => ConnectionEvents): Promise<SecureConnection> {
  return nodeDialer(target).dial(target.at, path, events);
}
