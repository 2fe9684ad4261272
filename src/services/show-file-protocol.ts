/**
 * The show-file calls on the peer port (`/files`), as zod schemas: the single
 * source of truth for what a node accepts and what the command line gets back.
 *
 * File contents never travel in JSON. A file is named by its size and the
 * SHA-256 of each 1 MiB chunk; the chunks go on the bulk lane (AES-256-GCM,
 * framing as for assets, asset-protocol.ts), so a push or pull of any size is
 * a stream of chunk frames and a chunk the other side has is never sent:
 *
 * - push: `files.missing {hashes}` says which chunks the main lacks; the pusher
 *   sends each (bulk frame, then `files.put {tag}`), then `push` names every
 *   changed file by its chunks. The main writes the revision only once every
 *   chunk is durable: one revision or none.
 * - pull: `pull {since}` lists the changed files with their chunks; the puller
 *   fetches the chunks it lacks with `files.read {hash, tag}` (bulk frame, then
 *   the answer).
 */
import { z } from "zod";
import { SHA256_HEX } from "../store/content-hash.ts";

/** Hashes asked about in one `files.missing` call. */
export const MAX_HASHES_PER_CALL = 4096;

const revision = z.int().nonnegative();
const path = z.string().min(1).max(1024);
const hash = z.string().regex(SHA256_HEX, "a SHA-256 in lowercase hex");
const tag = z.int().min(0).max(0xffff_ffff);

/** A file's content by reference: its size and its chunks' hashes, in order. */
export const fileContentSchema = z.object({ path, size: z.int().nonnegative(), chunks: z.array(hash) });
export const fileDeletionSchema = z.object({ path, deleted: z.literal(true) });
export const fileChangeSchema = z.union([fileContentSchema, fileDeletionSchema]);
export type FileChange = z.infer<typeof fileChangeSchema>;
export type FileContent = z.infer<typeof fileContentSchema>;

export const headParams = z.object({});
export const headResult = z.object({ rev: revision });

/** `files.route`: where this node sends show-file calls ("host:port" of the main), or null when it answers them itself. */
export const routeParams = z.object({});
export const routeResult = z.object({ forwardTo: z.string().max(300).nullable() });

export const pushParams = z.object({
  base: revision,
  changes: z.array(fileChangeSchema).min(1, "Nothing to push: no file changed."),
  message: z.string().max(1000).default(""),
  author: z.string().min(1).max(128),
  /** Made once per push and sent again on a retry, so a retry after a lost answer is not a conflict with itself. */
  pushId: z.string().min(1).max(128).optional(),
});
export type PushParams = z.infer<typeof pushParams>;
/**
 * `replicated`: "backup" once the backup applied it; "behind" when it did not answer in --sync-timeout-ms; "none" without a backup.
 * `unchanged`: the server already held every change (the push was sent again after its answer was lost), so no revision was
 * written and `rev` is the server's head.
 */
export const pushResult = z.object({ rev: revision, replicated: z.enum(["backup", "behind", "none"]), unchanged: z.boolean().default(false) });
export type PushResult = z.infer<typeof pushResult>;

export const pullParams = z.object({ since: revision });
export const pullResult = z.object({ head: revision, changes: z.array(fileChangeSchema) });
export type PullResult = z.infer<typeof pullResult>;

export const missingParams = z.object({ hashes: z.array(hash).max(MAX_HASHES_PER_CALL) });
export const missingResult = z.object({ missing: z.array(hash) });
/** The chunk's bytes are the bulk frame tagged `tag`, sent just before the call. */
export const putParams = z.object({ tag });
export const putResult = z.object({ hash, stored: z.boolean() });
/** The answer follows the bulk frame tagged `tag` that carries the chunk. */
export const readParams = z.object({ hash, tag });
export const readResult = z.object({ length: z.int().nonnegative() });

export const logParams = z.object({ limit: z.int().min(1).max(1000).default(50) });
export const logEntrySchema = z.object({ rev: revision, message: z.string(), author: z.string(), created: z.string(), files: z.int().nonnegative() });
export const logResult = z.array(logEntrySchema);
export type LogEntry = z.infer<typeof logEntrySchema>;

/** The exact refusal while the backup serves: worded once, in core, for the protocol and the page alike. */
export { READ_ONLY_MESSAGE } from "../core/storage-offers.ts";
