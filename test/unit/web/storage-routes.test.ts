/**
 * The Synced storage panel's routes over app.request(), on real in-process
 * machines: the show folder (refused in words when it cannot be one, fixed by
 * --show-folder), Push Changes (a comment required, one at a time), Pull and
 * Auto-Pull, refused while the backup serves, and the guards every POST has
 * (Origin, Host, password).
 */
import { afterEach, describe, expect, test } from "bun:test";
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import nacl from "tweetnacl";
import type { MachineNode } from "../../../src/machine/machine-node.ts";
import { READ_ONLY_MESSAGE } from "../../../src/services/show-file-protocol.ts";
import { firstEvent, formPost, setUpDataDir, startNode } from "../../support/machine-node.ts";
import { tempDir } from "../../support/machine-process.ts";
import { waitFor } from "../../support/wait-for.ts";

const running: MachineNode[] = [];
afterEach(async () => {
  for (const node of running.splice(0)) await node.stop();
});

async function node(flags: Record<string, string> = {}, key = nacl.randomBytes(32), env: Record<string, string> = {}) {
  const started = await startNode({ dataDir: flags.role ? setUpDataDir(key) : undefined, flags: { heartbeatMs: "50", failoverTimeoutMs: "250", ...flags }, env });
  running.push(started.node);
  return started;
}

const get = (n: MachineNode, path: string, headers: Record<string, string> = {}) => n.app.request(`http://localhost${path}`, { headers });
const htmx = { "hx-request": "true" };
/** As the page writes text. */
const escaped = (text: string) => text.replaceAll("'", "&#39;");
const savedConfig = (dir: string) => {
  try {
    return JSON.parse(readFileSync(join(dir, "config.json"), "utf8"));
  } catch {
    return {};
  }
};

describe("the show folder", () => {
  test("GET /storage on a server: the folder form, both lists, Push Changes, Pull and Auto-Pull, each waiting for a folder", async () => {
    const { node: n } = await node({ role: "server" });
    const html = await (await get(n, "/storage")).text();
    for (const s of ['data-testid="show-folder-input"', "Your changes to push", "All changes to pull", 'data-testid="push-changes"', 'data-testid="auto-pull"', 'id="storage-history"']) {
      expect(html).toContain(s);
    }
    expect(html).toContain("Set the show folder first.");
    expect(html).toMatch(/data-testid="push-changes" disabled|disabled="" data-testid="push-changes"|<button[^>]*disabled[^>]*data-testid="push-changes"/);
  });

  const refused: { name: string; folder: (data: string) => string; message: string }[] = [
    { name: "empty", folder: () => "  ", message: "Type the folder's full path" },
    { name: "relative", folder: () => "show/files", message: "is relative" },
    { name: "missing", folder: (data) => join(data, "..", "no-such-folder"), message: "There is no folder" },
    { name: "a file", folder: (data) => join(data, "config-file.txt"), message: "is a file, not a folder" },
    { name: "the data dir", folder: (data) => data, message: "is understudy's own data folder" },
    { name: "inside the data dir", folder: (data) => join(data, "inside"), message: "is inside understudy's own data folder" },
    { name: "a folder holding the data dir", folder: (data) => join(data, ".."), message: "holds understudy's own data folder" },
    { name: "/etc", folder: () => "/etc", message: "/etc is a system folder, which holds the operating system's own files" },
    { name: "a link to /etc", folder: (data) => join(data, "etc-link"), message: "etc-link leads to /etc, a system folder" },
    { name: "/proc/self", folder: () => "/proc/self", message: "inside /proc, a system folder" },
    { name: "the root of the disk", folder: () => "/", message: "/ is the root of the whole disk" },
  ];
  for (const r of refused) {
    test(`POST /storage/folder refused in words: ${r.name}; what was typed stays, nothing is saved`, async () => {
      const { node: n, dataDir: data } = await node({ role: "server" });
      writeFileSync(join(data, "config-file.txt"), "x");
      mkdirSync(join(data, "inside"));
      symlinkSync("/etc", join(data, "etc-link"));
      const typed = r.folder(data);
      for (const headers of [htmx, {}]) {
        const response = await formPost(n, "/storage/folder", { folder: typed }, headers);
        expect(response.status).toBe(400);
        const html = await response.text();
        expect(html).toContain(escaped(r.message));
        expect(html).toContain('data-testid="folder-error"');
        if (typed.trim() !== "") expect(html).toContain(`value="${typed}"`);
        // Without JavaScript the whole page comes back, with the reason beside the form.
        expect(html.includes("<!DOCTYPE html>")).toBe(!("hx-request" in headers));
      }
      expect(savedConfig(data).showFolder).toBeUndefined();
    });
  }

  test("POST /storage/folder without the field is refused", async () => {
    const { node: n } = await node({ role: "server" });
    const response = await formPost(n, "/storage/folder", {}, htmx);
    expect(response.status).toBe(400);
    expect(await response.text()).toContain(escaped("Type the folder's full path"));
  });

  test("a good folder is saved in config.json: the card under htmx, a redirect to the page without JavaScript", async () => {
    const { node: n, dataDir: data } = await node({ role: "server" });
    const folder = tempDir();
    const response = await formPost(n, "/storage/folder", { folder }, htmx);
    expect(response.status).toBe(200);
    expect(await response.text()).toContain("Show folder saved");
    expect(savedConfig(data).showFolder).toBe(folder);
    const other = tempDir();
    const plain = await formPost(n, "/storage/folder", { folder: other });
    expect(plain.status).toBe(303);
    expect(plain.headers.get("location")).toBe("/storage");
    expect(savedConfig(data).showFolder).toBe(other);
  });

  test("--show-folder fixes it: shown read-only naming the flag, and a POST is refused (409)", async () => {
    const folder = tempDir();
    const { node: n, dataDir: data } = await node({ role: "server", showFolder: folder });
    const html = await (await get(n, "/storage")).text();
    expect(html).toContain("Set by --show-folder on the command line");
    expect(html).toContain(`data-testid="show-folder">${folder}<`);
    expect(html).not.toContain('data-testid="show-folder-input"');
    const response = await formPost(n, "/storage/folder", { folder: tempDir() }, htmx);
    expect(response.status).toBe(409);
    expect(await response.text()).toContain("fixed by --show-folder");
    expect(savedConfig(data).showFolder).toBeUndefined();
  });

  test("--show-folder naming a folder that is missing at start (a drive not mounted yet) does not stop the machine: the panel says why", async () => {
    const missing = join(tempDir(), "not-mounted");
    const { node: n } = await node({ role: "server", showFolder: missing });
    await waitFor("the folder is looked at", () => n.folderSync()?.problem, 10_000);
    expect(await (await get(n, "/storage")).text()).toContain(`There is no folder ${missing} on this machine`);
    mkdirSync(missing);
    await waitFor("the folder works once it is there", () => n.folderSync()?.problem === null && n.folderSync()?.base === 0, 10_000);
  });

  test("--show-folder with a relative path stops the start naming the flag", async () => {
    await expect(node({ role: "server", showFolder: "show" })).rejects.toThrow("--show-folder: expected an absolute path");
  });

  test("a stand-alone machine has no synced storage: every action is refused in words", async () => {
    const { node: n } = await node();
    expect(await (await get(n, "/storage")).text()).toContain("A stand-alone machine has no synced storage.");
    for (const [path, fields] of [["/storage/push", { comment: "x" }], ["/storage/pull", {}]] as const) {
      const response = await formPost(n, path, fields, htmx);
      expect(response.status).toBe(409);
    }
  });
});

describe("Push Changes, Pull and Auto-Pull", () => {
  const comments: { name: string; fields: Record<string, string>; message: string }[] = [
    { name: "missing", fields: {}, message: "Write a comment" },
    { name: "blank", fields: { comment: "   " }, message: "Write a comment" },
    { name: "too long", fields: { comment: "x".repeat(1001) }, message: "under 1000 characters" },
  ];
  for (const c of comments) {
    test(`POST /storage/push with the comment ${c.name} is refused (400) and pushes nothing`, async () => {
      const { node: n } = await node({ role: "server", showFolder: tempDir() });
      const response = await formPost(n, "/storage/push", c.fields, htmx);
      expect(response.status).toBe(400);
      expect(await response.text()).toContain(c.message);
      expect(n.folderSync()!.job).toBeNull();
    });
  }

  test("push and pull without a folder are refused (409): set the show folder first", async () => {
    const { node: n } = await node({ role: "server" });
    for (const [path, fields] of [["/storage/push", { comment: "new rundown" }], ["/storage/pull", {}]] as const) {
      const response = await formPost(n, path, fields, htmx);
      expect(response.status).toBe(409);
      expect(await response.text()).toContain("Set the show folder first.");
    }
  });

  test("a push from the page becomes a revision with its comment; a second click while it runs is refused (409)", async () => {
    const folder = tempDir();
    const { node: n } = await node({ role: "server", showFolder: folder });
    writeFileSync(join(folder, "rundown.txt"), "news at ten");
    await waitFor("the change is listed", () => n.folderSync()?.toPush?.some((c) => c.path === "rundown.txt" && c.kind === "added"), 10_000);
    expect(await (await get(n, "/storage")).text()).toMatch(/data-kind="added"[^]*rundown\.txt/);
    const [first, second] = await Promise.all([formPost(n, "/storage/push", { comment: "news at ten" }, htmx), formPost(n, "/storage/push", { comment: "again" }, htmx)]);
    expect([first.status, second.status].sort()).toEqual([200, 409]);
    expect(await (first.status === 409 ? first : second).text()).toContain("A push is in progress");
    await waitFor("the push ends", () => n.folderSync()!.job === null && n.folderSync()!.outcome !== null, 10_000);
    expect(n.folderSync()!.outcome).toEqual({ ok: true, message: "Pushed revision 1 (1 file); no backup." });
    await waitFor("the history shows it", () => n.folderSync()!.history?.[0]?.message === "news at ten", 10_000);
    const html = await (await get(n, "/storage")).text();
    expect(html).toContain('data-testid="nothing-to-push"');
    expect(html).toMatch(/data-testid="storage-history"[^]*news at ten/);
  }, 30_000);

  test("Pull, then Auto-Pull: a client's folder gets what the main pushed from its own folder; the switch is kept in config.json", async () => {
    const key = nacl.randomBytes(32);
    const mainFolder = tempDir();
    const main = await node({ role: "main", showFolder: mainFolder }, key);
    const booth = tempDir();
    const client = await node({ role: "client", main: main.node.status().peerListen! }, key);
    await waitFor("the client follows the main", () => client.node.status().failover?.activeServer === "main", 10_000);
    const arrived = (text: string) => {
      try {
        return readFileSync(join(booth, "cues.json"), "utf8") === text;
      } catch {
        return false;
      }
    };
    const push = async (text: string, comment: string) => {
      writeFileSync(join(mainFolder, "cues.json"), text);
      await waitFor("the main lists it", () => (main.node.folderSync()?.toPushCount ?? 0) === 1, 10_000);
      expect((await formPost(main.node, "/storage/push", { comment }, htmx)).status).toBe(200);
      await waitFor("the main's push ends", () => main.node.folderSync()!.job === null && main.node.folderSync()!.toPushCount === 0, 10_000);
    };

    await push('{"cue":1}', "first cue");
    expect((await formPost(client.node, "/storage/folder", { folder: booth }, htmx)).status).toBe(200);
    await waitFor("the client lists revision 1 to pull", () => client.node.folderSync()!.toPull[0]?.message === "first cue", 10_000);
    expect(await (await get(client.node, "/storage")).text()).toMatch(/data-testid="changes-to-pull"[^]*first cue/);
    expect((await formPost(client.node, "/storage/pull", {}, htmx)).status).toBe(200);
    await waitFor("the file arrives on the client", () => arrived('{"cue":1}'), 10_000);
    await waitFor("the client's folder is at revision 1", () => client.node.folderSync()!.base === 1 && client.node.folderSync()!.job === null, 10_000);
    expect(client.node.folderSync()!.outcome).toEqual({ ok: true, message: "Pulled revision 1: 1 file changed." });

    const switched = await formPost(client.node, "/storage/auto-pull", { autoPull: "on" }, htmx);
    expect(switched.status).toBe(200);
    expect(await switched.text()).toContain('aria-checked="true"');
    expect(savedConfig(client.dataDir).autoPull).toBe("on");
    await push('{"cue":2}', "second cue");
    await waitFor("Auto-Pull brings the new revision", () => arrived('{"cue":2}'), 15_000);
    await waitFor("the client's folder is at revision 2", () => client.node.folderSync()!.base === 2, 10_000);
    await waitFor("its history says so", () => client.node.folderSync()!.history?.[0]?.message === "second cue", 10_000);
  }, 40_000);

  const badSwitch: { name: string; fields: Record<string, string> }[] = [
    { name: "missing", fields: {} },
    { name: "not on or off", fields: { autoPull: "maybe" } },
  ];
  for (const b of badSwitch) {
    test(`POST /storage/auto-pull with the value ${b.name} is refused (400)`, async () => {
      const { node: n, dataDir: data } = await node({ role: "server" });
      const response = await formPost(n, "/storage/auto-pull", b.fields, htmx);
      expect(response.status).toBe(400);
      expect(await response.text()).toContain("Auto-Pull is either on or off.");
      expect(savedConfig(data).autoPull).toBeUndefined();
    });
  }

  test("--auto-pull fixes the switch: refused (409) naming the flag", async () => {
    const { node: n } = await node({ role: "server", autoPull: "on" });
    const response = await formPost(n, "/storage/auto-pull", { autoPull: "off" }, htmx);
    expect(response.status).toBe(409);
    expect(await response.text()).toContain("fixed by --auto-pull");
  });

  test("while the backup serves: push, pull and Auto-Pull are disabled with the reason, and refused (409) with it", async () => {
    const key = nacl.randomBytes(32);
    const main = await node({ role: "main" }, key);
    const backup = await node({ role: "backup", main: main.node.status().peerListen!, showFolder: tempDir() }, key);
    expect((await formPost(main.node, "/machines/backup", { address: backup.node.status().peerListen! })).status).toBe(200);
    await waitFor("the backup is idle", () => backup.node.status().chip === "Backup is idle", 15_000);
    await main.node.stop();
    running.splice(running.indexOf(main.node), 1);
    await waitFor("the backup serves", () => backup.node.status().chip === "Backup is active", 10_000);

    const html = await (await get(backup.node, "/storage")).text();
    expect(html).toContain('data-testid="push-blocked"');
    expect(html).toContain(`${escaped(READ_ONLY_MESSAGE)}.`);
    for (const [path, fields] of [["/storage/push", { comment: "during the outage" }], ["/storage/pull", {}], ["/storage/auto-pull", { autoPull: "on" }]] as const) {
      for (const headers of [htmx, {}]) {
        const response = await formPost(backup.node, path, fields, headers);
        expect(response.status).toBe(409);
        expect(await response.text()).toContain(escaped(READ_ONLY_MESSAGE));
      }
    }
    expect(savedConfig(backup.dataDir).autoPull).toBeUndefined();
  }, 40_000);
});

describe("live", () => {
  /** The first SSE message of a live stream (then the stream is cancelled). */

  test("GET /events?panel=storage sends the lists, the buttons and the history to swap out of band, never the fields being typed in", async () => {
    const folder = tempDir();
    const { node: n } = await node({ role: "server", showFolder: folder });
    writeFileSync(join(folder, "rundown.txt"), "news");
    await waitFor("the change is listed", () => n.folderSync()?.toPush?.length === 1 && n.folderSync()?.history !== null, 10_000);
    const { text } = await firstEvent(n, "/events?panel=storage");
    for (const id of ["status-bar", "storage-status", "storage-sync", "push-controls", "pull-controls", "storage-history"]) expect(text).toMatch(new RegExp(`id="${id}"[^>]*hx-swap-oob="true"`));
    expect(text).toContain("rundown.txt");
    expect(text).not.toContain('id="folder-card"');
    expect(text).not.toContain('name="comment"');
  });
});

describe("the guards every POST has", () => {
  const posts: [string, Record<string, string>][] = [
    ["/storage/folder", { folder: "/tmp" }],
    ["/storage/push", { comment: "x" }],
    ["/storage/pull", {}],
    ["/storage/auto-pull", { autoPull: "on" }],
  ];
  for (const [path, fields] of posts) {
    test(`POST ${path}: a forged Origin gets 403, a foreign Host 421, no password 401; nothing changes`, async () => {
      const folder = tempDir();
      const { node: n, dataDir: data } = await node({ role: "server", showFolder: folder });
      expect((await formPost(n, path, fields, { origin: "http://evil.example" })).status).toBe(403);
      expect((await formPost(n, path, fields, { host: "evil.example:7400", origin: "http://evil.example:7400" })).status).toBe(421);
      expect(n.folderSync()!.job).toBeNull();
      expect(savedConfig(data)).toEqual({});

      const locked = await node({ role: "server" }, undefined, { UNDERSTUDY_UI_PASSWORD: "correct horse battery" });
      expect((await formPost(locked.node, path, fields)).status).toBe(401);
      expect(savedConfig(locked.dataDir)).toEqual({});
    });
  }
});
