/** `understudy asset put|get|ls` end to end against an in-process node with a real AssetStore. */
import { afterEach, expect, test } from "bun:test";
import { randomFillSync } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import nacl from "tweetnacl";
import { UsageError } from "../../../src/cli/args.ts";
import { assetCommand, UPLOAD_RECORD_SUFFIX } from "../../../src/cli/asset-commands.ts";
import { AppError } from "../../../src/core/errors.ts";
import { ASSET_READ_ONLY_MESSAGE } from "../../../src/services/asset-protocol.ts";
import { ASSET_CHUNK_BYTES } from "../../../src/store/asset-store.ts";
import { chunkFilePath } from "../../../src/store/chunk-files.ts";
import { sha256Hex } from "../../../src/store/content-hash.ts";
import { startAssetNode, writeKeyFile, type AssetNode } from "../services/asset-harness.ts";

const MiB = ASSET_CHUNK_BYTES;
const networkKey = nacl.randomBytes(32);
const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0).reverse()) cleanup();
});

function setup(options: Parameters<typeof startAssetNode>[1] = {}) {
  const server = startAssetNode(networkKey, options);
  const key = writeKeyFile(networkKey);
  const dir = mkdtempSync(join(tmpdir(), "understudy-asset-cmd-"));
  cleanups.push(() => server.stop(), key.cleanup, () => rmSync(dir, { recursive: true, force: true }));
  return { server, dir, flags: ["--node", server.address, "--key", key.keyFile] };
}

/** Runs the command; stdout and stderr (a non-TTY sink, as in a pipe) are collected. */
async function run(flags: string[], ...argv: string[]) {
  let out = "";
  let err = "";
  const code = await assetCommand([...argv, ...flags], (text) => (out += text), { write: (text: string) => (err += text), isTTY: false });
  return { code, out, err };
}
async function failure(flags: string[], ...argv: string[]): Promise<AppError> {
  const error = await run(flags, ...argv).then(
    () => null,
    (e: unknown) => e,
  );
  if (error instanceof AppError) return error;
  throw new Error(`expected an AppError, got ${String(error)}`);
}
function writeRandom(path: string, size: number): Uint8Array {
  const data = randomFillSync(new Uint8Array(size));
  writeFileSync(path, data);
  return data;
}
const ls = (dir: string) => readdirSync(dir).sort();

test("put prints the id, ls lists it, get writes it back; progress is one plain line off a terminal", async () => {
  const { dir, flags } = setup();
  const file = join(dir, "clip.bin");
  const data = writeRandom(file, 3.5 * MiB);
  const put = await run(flags, "put", file);
  expect(put.code).toBe(0);
  const id = put.out.trim();
  expect(id).toMatch(/^[0-9a-f-]{36}$/);
  expect(put.err).not.toContain("\r");
  expect(put.err).toMatch(/^Uploading clip\.bin: 3\.7 MB in [\d.]+ s \(\d+\.\d MB\/s\)\n"clip\.bin" is asset [0-9a-f-]{36} \(3\.7 MB\); no backup\n$/);
  expect(existsSync(file + UPLOAD_RECORD_SUFFIX)).toBe(false);

  const listed = await run(flags, "ls");
  expect(listed.out).toMatch(new RegExp(`^${id}  +3\\.7 MB  2023-11-14T22:13:20\\.000Z  clip\\.bin\\n$`));

  const out = join(dir, "copy.bin");
  const got = await run(flags, "get", id, out);
  expect(got.out).toBe(`Wrote ${out}: "clip.bin", 3.7 MB\n`);
  expect(got.err).toMatch(/^Downloading clip\.bin: 3\.7 MB in [\d.]+ s \(\d+\.\d MB\/s\)\n$/);
  expect(readFileSync(out).equals(data)).toBe(true);
  expect(ls(dir)).toEqual(["clip.bin", "copy.bin"]);

  const part = join(dir, "part.bin");
  const ranged = await run(flags, "get", id, part, "--range", `${MiB - 5}-${2 * MiB + 5}`);
  expect(ranged.out).toContain(`(bytes ${MiB - 5}-${2 * MiB + 5} of ${data.length})`);
  expect(readFileSync(part).equals(data.subarray(MiB - 5, 2 * MiB + 5))).toBe(true);
  await run(flags, "get", id, part, "--range", `${3 * MiB}-`);
  expect(readFileSync(part).equals(data.subarray(3 * MiB))).toBe(true);

  expect((await run(flags, "put", file, "--name", "again.bin")).out.trim()).not.toBe(id);
  expect((await run(flags, "ls")).out.split("\n").filter(Boolean)).toHaveLength(2);
});

test("an upload cut off midway is resumed by running it again: only the missing chunks are sent", async () => {
  const { server, dir, flags } = setup();
  const file = join(dir, "long.bin");
  const data = writeRandom(file, 4 * MiB + 10);
  server.afterChunk = (n) => {
    if (n === 2) server.dropConnections();
  };
  const cut = await failure(flags, "put", file);
  await server.putsSettled(); // a put the drop cut off still finishes on the server
  expect(cut.code).toBe("CONNECTION_LOST");
  expect(cut.message).toContain("run the same command again");
  expect(existsSync(file + UPLOAD_RECORD_SUFFIX)).toBe(true);
  const sentBefore = new Set(server.putChunks);

  server.afterChunk = () => {};
  server.putChunks.length = 0;
  const resumed = await run(flags, "put", file);
  expect(resumed.err).toContain("already there");
  expect(server.putChunks.length).toBe(5 - sentBefore.size);
  for (const idx of server.putChunks) expect(sentBefore.has(idx)).toBe(false);
  expect(existsSync(file + UPLOAD_RECORD_SUFFIX)).toBe(false);
  const [asset] = server.stores!.assets.list();
  expect(asset).toMatchObject({ id: resumed.out.trim(), sha256: sha256Hex(data), size: data.length });
});

test("a changed file is not resumed into the old upload", async () => {
  const { server, dir, flags } = setup();
  const file = join(dir, "v.bin");
  writeRandom(file, 2 * MiB);
  server.afterChunk = (n) => n === 1 && server.dropConnections();
  await failure(flags, "put", file);
  await server.putsSettled(); // a put the drop cut off still finishes on the server
  server.afterChunk = () => {};
  const data = writeRandom(file, 2 * MiB + 1);
  server.putChunks.length = 0;
  const id = (await run(flags, "put", file)).out.trim();
  expect(server.putChunks).toEqual([0, 1, 2]);
  expect(server.stores!.assets.pendingUploads()).toEqual([]); // the stale upload was aborted
  expect(server.stores!.assets.list()[0]).toMatchObject({ id, sha256: sha256Hex(data) });
});

test("get resumes a partial OUT.part of the same asset and range, and restarts one of another", async () => {
  const { server, dir, flags } = setup();
  const file = join(dir, "src.bin");
  const data = writeRandom(file, 3 * MiB + 1);
  const id = (await run(flags, "put", file)).out.trim();
  const out = join(dir, "dst.bin");
  writeFileSync(`${out}.part`, data.subarray(0, 2 * MiB));
  writeFileSync(`${out}.part.json`, JSON.stringify({ version: 1, id, sha256: sha256Hex(data), start: 0, end: data.length }));
  const resumed = await run(flags, "get", id, out);
  expect(resumed.err).toContain("2.1 MB already there");
  expect(readFileSync(out).equals(data)).toBe(true);
  expect(ls(dir)).toEqual(["dst.bin", "src.bin"]);

  // A part of something else is thrown away, not trusted.
  writeFileSync(`${out}.part`, new Uint8Array(2 * MiB));
  writeFileSync(`${out}.part.json`, JSON.stringify({ version: 1, id, sha256: sha256Hex(data), start: 5, end: data.length }));
  rmSync(out);
  expect((await run(flags, "get", id, out)).err).not.toContain("already there");
  expect(readFileSync(out).equals(data)).toBe(true);
  expect(server.putChunks.length).toBe(4);
});

test("a damaged chunk fails the download and OUT is never written", async () => {
  const { server, dir, flags } = setup();
  const file = join(dir, "src.bin");
  const data = writeRandom(file, 2 * MiB);
  const id = (await run(flags, "put", file)).out.trim();
  const flipped = new Uint8Array(data.subarray(MiB));
  flipped[0] = flipped[0]! ^ 1;
  writeFileSync(chunkFilePath(server.db!.filename, sha256Hex(data.subarray(MiB))), flipped);
  const out = join(dir, "dst.bin");
  const error = await failure(flags, "get", id, out);
  expect(error.code).toBe("CORRUPT_CHUNK");
  expect(existsSync(out)).toBe(false);
});

test("while the backup serves, put is refused with the read-only message and nothing is left behind; get and ls work", async () => {
  const { server, dir, flags } = setup();
  const file = join(dir, "a.bin");
  writeRandom(file, 10);
  const id = (await run(flags, "put", file)).out.trim();
  server.mode = "read-only";
  const error = await failure(flags, "put", file, "--name", "b.bin");
  expect({ code: error.code, message: error.message }).toEqual({ code: "READ_ONLY", message: ASSET_READ_ONLY_MESSAGE });
  expect(existsSync(file + UPLOAD_RECORD_SUFFIX)).toBe(false);
  expect((await run(flags, "ls")).out).toContain(id);
  await run(flags, "get", id, join(dir, "back.bin"));
  expect(readFileSync(join(dir, "back.bin"))).toEqual(readFileSync(file));
});

test("ls on an empty hub, and help", async () => {
  const { flags } = setup();
  expect((await run(flags, "ls")).out).toBe("No assets yet.\n");
  expect((await run([], "--help")).out).toContain("understudy asset put FILE");
  expect((await run([], "get", "--help")).out).toContain("--range START-END");
});

test("bad command lines are usage errors and touch nothing", async () => {
  const { dir, flags } = setup();
  mkdirSync(join(dir, "folder"));
  writeFileSync(join(dir, "f.bin"), "x");
  const cases: [string[], string][] = [
    [["frobnicate"], 'unknown subcommand "frobnicate"'],
    [["put"], "missing argument"],
    [["put", join(dir, "missing.bin")], "is not a file"],
    [["put", join(dir, "folder")], "is not a file"],
    [["put", join(dir, "f.bin"), "--name", ""], "--name must be"],
    [["get", "abc"], "missing argument"],
    [["get", "not an id!", join(dir, "o")], "is not an asset id"],
    [["get", "abc", join(dir, "folder")], "is a folder"],
    [["get", "abc", join(dir, "nowhere", "o.bin")], "does not exist"],
    [["get", "abc", join(dir, "o.bin"), "--range", "10-5"], "--range 10-5"],
    [["get", "abc", join(dir, "o.bin"), "--range", "x"], "--range x"],
    [["ls", "extra"], 'unexpected argument "extra"'],
    [["ls", "--bogus"], "unknown flag --bogus"],
  ];
  for (const [argv, message] of cases) {
    const error = await failure(flags, ...argv);
    expect(error).toBeInstanceOf(UsageError);
    expect(error.message).toContain(message);
  }
  expect(ls(dir)).toEqual(["f.bin", "folder"]);
  const outside = await failure(flags, "get", "00000000-0000-4000-8000-000000000000", join(dir, "o.bin"));
  expect(outside.code).toBe("ASSET_NOT_FOUND");
  expect(ls(dir)).toEqual(["f.bin", "folder"]);
});

test("a range beyond the asset is refused before anything is written", async () => {
  const { dir, flags } = setup();
  writeFileSync(join(dir, "s.bin"), "0123456789");
  const id = (await run(flags, "put", join(dir, "s.bin"))).out.trim();
  const error = await failure(flags, "get", id, join(dir, "o.bin"), "--range", "5-11");
  expect(error.code).toBe("RANGE_NOT_SATISFIABLE");
  expect(ls(dir)).toEqual(["s.bin"]);
  await run(flags, "get", id, join(dir, "o.bin"), "--range", "2-4");
  expect(readFileSync(join(dir, "o.bin"), "utf8")).toBe("23");
});

test("through a forwarding node, as from a client machine: put and get ask it where the main is, then move the chunks to the main straight", async () => {
  const main = setup();
  let asked = 0;
  const own = startAssetNode(networkKey, { store: false, mode: "forward", forwardTo: () => (asked++, main.server.address) });
  cleanups.push(() => own.stop());
  const flags = ["--node", own.address, "--key", main.flags[3]!];
  const file = join(main.dir, "r.bin");
  const data = writeRandom(file, MiB + 1);
  const id = (await run(flags, "put", file)).out.trim();
  expect(main.server.stores!.assets.list().map((a) => a.id)).toEqual([id]);
  await run(flags, "get", id, join(main.dir, "r2.bin"));
  expect(readFileSync(join(main.dir, "r2.bin")).equals(data)).toBe(true);
  // Once per command: a node relaying the calls would look the main up for each of them.
  expect(asked).toBe(2);
  expect((await run(flags, "ls")).out).toContain(id);
});

test("asset rm removes an asset; asset abort stops an upload; unknown ids are named", async () => {
  const { dir, flags, server } = setup();
  const file = join(dir, "clip.bin");
  writeRandom(file, MiB + 3);
  const id = (await run(flags, "put", file)).out.trim();
  expect((await run(flags, "rm", id)).out).toBe(`Asset ${id} removed; no backup.\n`);
  expect((await run(flags, "ls")).out).toBe("No assets yet.\n");
  expect((await failure(flags, "rm", id)).code).toBe("ASSET_NOT_FOUND");

  const upload = server.stores!.assets.beginUpload("half.mov", 3 * MiB);
  expect((await run(flags, "abort", upload.id)).out).toBe(`Upload ${upload.id} stopped; its space is given back after the grace period.\n`);
  expect(server.stores!.assets.pendingUploads()).toEqual([]);
  expect((await failure(flags, "abort", upload.id)).code).toBe("UPLOAD_NOT_FOUND");
  expect(await failure(flags, "rm", "not/an/id")).toBeInstanceOf(UsageError);
});
