/**
 * What a list of show-file changes may say, checked the same way by the main
 * when it takes a push and by a puller before it writes a byte (§Show folder).
 * Pure: no I/O.
 *
 * A file is named by its size and the hashes of its chunks, each `chunkBytes`
 * but the last. The size and the number of chunks must agree: a file of N bytes
 * has ceil(N / chunkBytes) chunks, an empty file none. That bounds what a file
 * can claim by what its manifest carries (a 1 TiB file would need a million
 * hashes), so a key holder answering as the main cannot make a puller write a
 * sparse terabyte out of `{size: 2^40, chunks: []}`.
 */
import { showPathProblem } from "./show-paths.ts";

/** One change of a push or a pull: content by reference, or a deletion (no size). */
export type ManifestChange = { readonly path: string; readonly size?: number; readonly chunks?: readonly string[] };

/** What is wrong with one change, and which path it is about. */
export type ManifestProblem = { readonly path: string; readonly problem: string };

/** Why a file of `size` bytes cannot be made of `chunkCount` chunks of `chunkBytes`, or undefined. */
export function fileShapeProblem(size: number, chunkCount: number, chunkBytes: number): string | undefined {
  if (!Number.isSafeInteger(size) || size < 0) return `says it holds ${size} bytes, which no file can`;
  const needed = Math.ceil(size / chunkBytes);
  if (chunkCount === needed) return undefined;
  return `says it holds ${size} bytes, which take ${needed} piece${needed === 1 ? "" : "s"} of ${chunkBytes} bytes, but it names ${chunkCount}`;
}

/**
 * The first problem among `changes` (one `what`), or undefined: a path that is not a valid
 * show-file path, a path named twice, a size its chunks cannot hold.
 */
export function manifestProblem(changes: readonly ManifestChange[], chunkBytes: number, what: "push" | "pull"): ManifestProblem | undefined {
  const seen = new Set<string>();
  for (const change of changes) {
    const pathProblem = showPathProblem(change.path);
    if (pathProblem !== undefined) return { path: change.path, problem: `Show-file path ${JSON.stringify(change.path)} ${pathProblem}` };
    if (seen.has(change.path)) return { path: change.path, problem: `${JSON.stringify(change.path)} appears twice in one ${what}` };
    seen.add(change.path);
    if (change.chunks === undefined || change.size === undefined) continue;
    const shape = fileShapeProblem(change.size, change.chunks.length, chunkBytes);
    if (shape !== undefined) return { path: change.path, problem: `${JSON.stringify(change.path)} ${shape}` };
  }
  return undefined;
}
