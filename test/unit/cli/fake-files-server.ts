/**
 * A tiny in-process `/files` server for the command-line tests: the real secure
 * socket and rpc layers over an in-memory show file with the server's rules (a
 * path changed after the push's base is a conflict; a pull returns each path
 * changed since a revision, as of the head).
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import nacl from "tweetnacl";
import { AppError } from "../../../src/core/errors.ts";
import { formatNetworkKey } from "../../../src/core/keys.ts";
import { rpcServer } from "../../../src/net/rpc.ts";
import { newServerSocketData, secureServerHandlers } from "../../../src/net/secure-socket.ts";
import { logParams, pullParams, pushParams, READ_ONLY_MESSAGE, type LogEntry, type PullResult, type PushResult } from "../../../src/services/show-file-protocol.ts";
import { PushConflict } from "../../../src/store/store-errors.ts";

type Revision = LogEntry & { paths: string[] };

export class FakeShowFiles {
  /** Each path's content at the head (null once deleted) and the revision that last changed it. */
  readonly files = new Map<string, { content: string | null; rev: number }>();
  readonly revisions: Revision[] = [];
  readOnly = false;
  replicated: PushResult["replicated"] = "none";

  get head(): number {
    return this.revisions.length;
  }

  handlers() {
    const guard = () => {
      if (this.readOnly) throw new AppError("READ_ONLY", READ_ONLY_MESSAGE, { status: 503 });
    };
    return {
      head: () => ({ rev: this.head }),
      push: (params: unknown) => {
        guard();
        const { base, changes, message, author } = pushParams.parse(params);
        if (base > this.head) throw new AppError("UNKNOWN_REVISION", `Revision ${base} is not on this server.`, { status: 404 });
        const conflicts = changes.map((c) => c.path).filter((path) => (this.files.get(path)?.rev ?? 0) > base);
        if (conflicts.length > 0) throw new PushConflict(conflicts, base, this.head);
        const rev = this.head + 1;
        for (const change of changes) this.files.set(change.path, { content: change.content, rev });
        this.revisions.push({ rev, message, author, created: new Date(Date.UTC(2030, 0, rev)).toISOString(), files: changes.length, paths: changes.map((c) => c.path) });
        return { rev, replicated: this.replicated } satisfies PushResult;
      },
      pull: (params: unknown): PullResult => {
        guard();
        const { since } = pullParams.parse(params);
        const changes = [...this.files].filter(([, f]) => f.rev > since).map(([path, f]) => ({ path, content: f.content }));
        return { head: this.head, changes };
      },
      log: (params: unknown): LogEntry[] => {
        const { limit } = logParams.parse(params);
        return this.revisions
          .slice(-limit)
          .reverse()
          .map(({ paths: _, ...entry }) => entry);
      },
    };
  }
}

/** Starts the fake on port 0; `flags` are the --node and --key a command needs to reach it. */
export function startFakeFilesServer(show = new FakeShowFiles()) {
  const networkKey = nacl.randomBytes(32);
  const options = { networkKey, machine: nacl.sign.keyPair() };
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch(request, srv) {
      return srv.upgrade(request, { data: newServerSocketData(options, "client", "/files") }) ? undefined : new Response("no", { status: 400 });
    },
    websocket: secureServerHandlers(options, (connection) => rpcServer(connection, show.handlers()), () => {}),
  });
  const keyDir = mkdtempSync(join(tmpdir(), "understudy-key-"));
  const keyFile = join(keyDir, "network.key");
  writeFileSync(keyFile, formatNetworkKey(networkKey));
  return { show, server, keyDir, flags: ["--node", `127.0.0.1:${server.port}`, "--key", keyFile] };
}
