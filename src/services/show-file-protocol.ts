/**
 * The show-file calls on the peer port (`/files`), as zod schemas: the single
 * source of truth for what a node accepts and what the command line gets back.
 * File contents travel base64 in JSON; show files are small next to assets,
 * which have their own lane.
 */
import { z } from "zod";

export const MAX_PUSH_FILES = 10_000;
export const MAX_FILE_BYTES = 8 * 1024 * 1024;

const revision = z.int().nonnegative();
const path = z.string().min(1).max(1024);
const content = z.base64().max(Math.ceil(MAX_FILE_BYTES / 3) * 4).nullable();

export const fileChangeSchema = z.object({ path, content });
export type FileChange = z.infer<typeof fileChangeSchema>;

export const headParams = z.object({});
export const headResult = z.object({ rev: revision });

export const pushParams = z.object({
  base: revision,
  changes: z.array(fileChangeSchema).min(1, "Nothing to push: no file changed.").max(MAX_PUSH_FILES),
  message: z.string().max(1000).default(""),
  author: z.string().min(1).max(128),
});
export type PushParams = z.infer<typeof pushParams>;
/** `replicated`: "backup" once the backup applied it; "behind" when it did not answer in --sync-timeout-ms; "none" without a backup. */
export const pushResult = z.object({ rev: revision, replicated: z.enum(["backup", "behind", "none"]) });
export type PushResult = z.infer<typeof pushResult>;

export const pullParams = z.object({ since: revision });
export const pullResult = z.object({ head: revision, changes: z.array(fileChangeSchema) });
export type PullResult = z.infer<typeof pullResult>;

export const logParams = z.object({ limit: z.int().min(1).max(1000).default(50) });
export const logEntrySchema = z.object({ rev: revision, message: z.string(), author: z.string(), created: z.string(), files: z.int().nonnegative() });
export const logResult = z.array(logEntrySchema);
export type LogEntry = z.infer<typeof logEntrySchema>;

/** The exact refusal while the backup serves (DESIGN.md, failover step 4). */
export const READ_ONLY_MESSAGE = "The main server is down: file changes can't be pushed or pulled until it is back";
