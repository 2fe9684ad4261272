/**
 * The backup's copy of the main's Data Hub state asks "since" the main's
 * `through` it last imported: after the backup served, its own writes are
 * newer than writes the main took while cut off, and asking since its own
 * last version skipped those for good (sim seed 1390, invariant HL1).
 */
import { expect, test } from "bun:test";
import nacl from "tweetnacl";
import type { HostPort } from "../../../src/core/config.ts";
import { HubCore } from "../../../src/hub/hub-core.ts";
import type { RetainedEntry } from "../../../src/hub/retained-state.ts";
import type { Version } from "../../../src/hub/frames.ts";
import { createLogger } from "../../../src/log.ts";
import type { PeerDialer } from "../../../src/net/peer-net.ts";
import { PeerRefusals } from "../../../src/net/peer-refusals.ts";
import type { ConnectionEvents, SecureConnection } from "../../../src/net/secure-socket.ts";
import { HubService, replicateRequestSchema } from "../../../src/services/hub-service.ts";
import { catchUpFrom, HubStateReplication } from "../../../src/services/hub-state-replication.ts";
import { CopyMarkFile } from "../../../src/store/copy-mark-file.ts";
import { ManualClock, ManualTimers } from "../../support/clock.ts";
import { tempDir } from "../../support/machine-process.ts";

const log = createLogger(() => "json", () => {});
const decoder = new TextDecoder();
const encoder = new TextEncoder();
const settle = () => new Promise((r) => setTimeout(r, 0));

/** A main's `/replicate` over a fake dialer: each question answered from `main` at once. */
function dialerTo(main: HubCore): PeerDialer {
  return {
    dial: async (_to: HostPort, _path, events: (c: SecureConnection) => ConnectionEvents) => {
      let handlers: ConnectionEvents | null = null;
      const connection: SecureConnection = {
        peer: {} as never,
        open: true,
        send: (payload) => {
          const request = replicateRequestSchema.parse(JSON.parse(decoder.decode(payload)));
          const answer = { type: "changes", changes: main.exportStateSince(request.version) };
          queueMicrotask(() => handlers!.message(encoder.encode(JSON.stringify(answer))));
          return true;
        },
        sendSealed: () => true,
        sendBulk: () => true,
        close: () => {},
      };
      handlers = events(connection);
      return connection;
    },
  };
}

/** Writes `entries` into a hub as if written there (versions as given). */
function write(core: HubCore, ...entries: RetainedEntry[]): void {
  const through = entries.at(-1)!.version;
  core.importState({ since: { epoch: 0, seq: 0 }, through, complete: false, entries: [...entries], setMarks: [] });
}

test("writes the main took while cut off are copied after the backup served and stepped down", async () => {
  const main = new HubCore({ epoch: 1, writable: true });
  const backup = new HubService(new HubCore({ epoch: 1 }), nacl.randomBytes(32), log);
  const timers = new ManualTimers(new ManualClock());
  let synced = 0;
  const copy = new HubStateReplication({
    net: dialerTo(main),
    source: () => ({ host: "127.0.0.1", port: 7401 }),
    hub: backup,
    periodMs: 100,
    refusals: new PeerRefusals(timers.clock, log),
    signals: { synced: () => synced++, broken: () => {} },
    timers,
  });
  const tick = async () => {
    copy.tick();
    await settle();
    copy.tick();
    await settle();
  };
  write(main, { key: "cue", value: 1, version: { epoch: 1, seq: 1 } });
  await tick();
  expect(backup.core.retainedEntry("cue")?.value).toBe(1);
  expect(synced).toBe(1);

  // The main, cut off, still takes a write; the backup serves at epoch 2 and takes its own.
  write(main, { key: "late", value: "main", version: { epoch: 1, seq: 2 } });
  write(backup.core, { key: "own", value: "backup", version: { epoch: 2, seq: 1 } });
  // It steps down and copies again: the main's write from before the switch must arrive.
  await tick();
  expect(backup.core.retainedEntry("late")?.value).toBe("main");
  expect(backup.core.retainedEntry("own")?.value).toBe("backup");
  copy.stop();
});

test("the copy mark outlives a restart, and belongs to one main", () => {
  const dir = tempDir();
  new CopyMarkFile(dir).write("main-a", { epoch: 3, seq: 7 });
  const again = new CopyMarkFile(dir);
  expect(again.read("main-a")).toEqual({ epoch: 3, seq: 7 });
  expect(again.read("main-b")).toBeNull();
});

test("a state larger than a page is copied in pages on one connection, and the first copy is reported once, after the last page", async () => {
  const main = new HubCore({ epoch: 1, writable: true });
  const pad = "p".repeat(60 * 1024);
  write(main, ...Array.from({ length: 90 }, (_, i) => ({ key: `k${i}`, value: pad, version: { epoch: 1, seq: i + 1 } })));
  expect(main.exportStateSince({ epoch: 0, seq: 0 }).more).toBe(true); // over HUB_COPY_PAGE_BYTES: more than one page
  const backup = new HubService(new HubCore({ epoch: 1 }), nacl.randomBytes(32), log);
  const timers = new ManualTimers(new ManualClock());
  const heldAtSynced: number[] = [];
  let asked = 0;
  const net = dialerTo(main);
  const counting: PeerDialer = {
    dial: (to, path, events) =>
      net.dial(to, path, events).then((c) => {
        const send = c.send.bind(c);
        c.send = (payload) => (asked++, send(payload));
        return c;
      }),
  };
  const copy = new HubStateReplication({
    net: counting,
    source: () => ({ host: "127.0.0.1", port: 7401 }),
    hub: backup,
    periodMs: 100,
    refusals: new PeerRefusals(timers.clock, log),
    signals: { synced: () => heldAtSynced.push(backup.core.retainedUse().keys), broken: () => {} },
    timers,
  });
  copy.tick();
  for (let i = 0; i < 20; i++) await settle();
  expect(asked).toBeGreaterThan(1);
  expect(heldAtSynced).toEqual([90]);
  expect(backup.core.retainedEntry("k89")?.value).toBe(pad);
  copy.stop();
});

test("the main's catch-up takes a large state page by page, moving its copy mark after each", async () => {
  const backup = new HubCore({ epoch: 2, writable: true });
  const pad = "p".repeat(60 * 1024);
  write(backup, ...Array.from({ length: 90 }, (_, i) => ({ key: `k${i}`, value: pad, version: { epoch: 2, seq: i + 1 } })));
  const main = new HubService(new HubCore({ epoch: 1 }), nacl.randomBytes(32), log);
  const marks: Version[] = [];
  const mark = { read: () => marks.at(-1) ?? null, write: (v: Version) => void marks.push(v) };
  await catchUpFrom(dialerTo(backup), { host: "127.0.0.1", port: 7401 }, main, mark);
  expect(marks.length).toBeGreaterThan(1);
  expect(marks.at(-1)).toEqual({ epoch: 2, seq: 90 });
  expect(main.core.retainedUse().keys).toBe(90);
});
