/**
 * Errors of the show file, the asset cache and the replication log. Each has a
 * stable code (the CLI, the UI and tests switch on it) and says what to do.
 * Every refusal here means nothing was written.
 */
import { AppError } from "../core/errors.ts";

const list = (paths: readonly string[]) => paths.map((p) => JSON.stringify(p)).join(", ");
const count = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`;

/** A push whose base is stale for some of its paths: someone else changed them first. */
export class PushConflict extends AppError {
  readonly paths: readonly string[];
  readonly base: number;
  readonly head: number;
  constructor(paths: readonly string[], base: number, head: number) {
    super(
      "PUSH_CONFLICT",
      `Push refused: ${list(paths)} changed on the server after revision ${base} (the server is at ${head}). Pull, merge your changes into those files, and push again. Nothing was written.`,
      { status: 409 },
    );
    this.name = "PushConflict";
    this.paths = paths;
    this.base = base;
    this.head = head;
  }
}

export class UnknownRevision extends AppError {
  readonly rev: number;
  constructor(rev: number, head: number) {
    super("UNKNOWN_REVISION", `Revision ${rev} is not on this server (it has revisions 0 to ${head}). Pull again to get a revision the server knows.`, { status: 404 });
    this.name = "UnknownRevision";
    this.rev = rev;
  }
}

export class ShowFileNotFound extends AppError {
  readonly path: string;
  constructor(path: string, rev: number) {
    super("SHOW_FILE_NOT_FOUND", `There is no ${JSON.stringify(path)} in revision ${rev} of the show file.`, { status: 404 });
    this.name = "ShowFileNotFound";
    this.path = path;
  }
}

const RESTORE_HINT = "The database on this machine is damaged; restore it from the other server (its copy was checked when it was written).";

/** Stored show-file content that no longer matches its SHA-256: disk or memory damage, never served. */
export class CorruptBlob extends AppError {
  readonly path: string;
  readonly hash: string;
  constructor(path: string, hash: string, cause?: unknown) {
    super("CORRUPT_BLOB", `The stored content of ${JSON.stringify(path)} does not match its hash ${hash}. ${RESTORE_HINT}`, { status: 500, cause });
    this.name = "CorruptBlob";
    this.path = path;
    this.hash = hash;
  }
}

/** A stored asset chunk that no longer matches its SHA-256. `where` names the asset or the lane that read it. */
export class CorruptChunk extends AppError {
  readonly hash: string;
  constructor(hash: string, where: string) {
    super("CORRUPT_CHUNK", `Chunk ${hash} of ${where} does not match its hash. ${RESTORE_HINT}`, { status: 500 });
    this.name = "CorruptChunk";
    this.hash = hash;
  }
}

/**
 * SQLITE_FULL or ENOSPC: the disk (or the database's size limit) is full. The transaction was rolled back.
 * Names what filled: the chunk folder when a chunk file's write failed (chunk-files.ts marks those), else the database.
 */
export class DiskFull extends AppError {
  readonly filled: string;
  constructor(what: string, databaseFile: string, cause: unknown) {
    const filled = (cause as { chunkFolder?: unknown } | null)?.chunkFolder;
    const where = typeof filled === "string" ? filled : databaseFile;
    super(
      "DISK_FULL",
      `The disk holding ${where} is full, so ${what} could not be saved (nothing of it was written). Free space on that disk, then try again; everything saved before is intact.`,
      { status: 507, cause },
    );
    this.name = "DiskFull";
    this.filled = where;
  }
}

export class AssetNotFound extends AppError {
  constructor(id: string) {
    super("ASSET_NOT_FOUND", `There is no asset ${JSON.stringify(id)} in the Asset Hub. List the assets to find its id.`, { status: 404 });
    this.name = "AssetNotFound";
  }
}

export class ChunkNotFound extends AppError {
  constructor(hash: string) {
    super("CHUNK_NOT_FOUND", `Chunk ${hash} is not in this machine's asset cache.`, { status: 404 });
    this.name = "ChunkNotFound";
  }
}

/** The upload id is unknown: it was committed, aborted, or never begun here. */
export class UploadNotFound extends AppError {
  constructor(id: string) {
    super("UPLOAD_NOT_FOUND", `There is no upload ${JSON.stringify(id)} in progress. Start the upload again.`, { status: 404 });
    this.name = "UploadNotFound";
  }
}

/** A chunk with the wrong index, size or hash. */
export class InvalidChunk extends AppError {
  constructor(message: string) {
    super("INVALID_CHUNK", `${message} The chunk was not stored.`, { status: 400 });
    this.name = "InvalidChunk";
  }
}

export class UploadIncomplete extends AppError {
  readonly missing: readonly number[];
  constructor(id: string, missing: readonly number[]) {
    const shown = missing.slice(0, 10).join(", ") + (missing.length > 10 ? ", ..." : "");
    super("UPLOAD_INCOMPLETE", `Upload ${id} is missing ${count(missing.length, "chunk")} (${shown}). Send them, then commit again.`, { status: 409 });
    this.name = "UploadIncomplete";
    this.missing = missing;
  }
}

/** The uploaded bytes do not hash to what the uploader said: damaged on the way, or the file changed while it was read. */
export class AssetHashMismatch extends AppError {
  constructor(id: string, expected: string, actual: string) {
    super(
      "ASSET_HASH_MISMATCH",
      `Upload ${id} hashes to ${actual}, not ${expected}: the file changed while it was uploaded, or bytes were damaged. Abort the upload and upload the file again.`,
      { status: 422 },
    );
    this.name = "AssetHashMismatch";
  }
}

export class RangeNotSatisfiable extends AppError {
  constructor(start: number, end: number, size: number) {
    super("RANGE_NOT_SATISFIABLE", `Byte range ${start}-${end} is outside the asset (it has ${size} bytes; ranges run start ≤ end ≤ size, end exclusive).`, { status: 416 });
    this.name = "RangeNotSatisfiable";
  }
}

/** A manifest may only become visible once every chunk it names is stored (the chunk lane fetches them first). */
export class ChunksMissing extends AppError {
  readonly missing: readonly string[];
  /** `what`: "Asset ID" or "Revision N". */
  constructor(what: string, missing: readonly string[]) {
    super("CHUNKS_MISSING", `${what} can't be applied yet: ${missing.length} of its chunks are not here. Fetch them by hash first.`, { status: 409 });
    this.name = "ChunksMissing";
    this.missing = missing;
  }
}

/** A push names chunks the main does not hold (not sent, or reclaimed since): the pusher sends them and pushes again. */
export class PushChunksMissing extends AppError {
  readonly missing: readonly string[];
  constructor(path: string, missing: readonly string[]) {
    super("CHUNKS_MISSING", `The push names ${count(missing.length, "piece")} of ${JSON.stringify(path)} the main server does not have. Nothing was written; push again (it sends what is missing).`, { status: 409 });
    this.name = "PushChunksMissing";
    this.missing = missing;
  }
}

/** An entry arrived that does not follow the last one applied: entries were lost on the way. */
export class ReplicationGap extends AppError {
  constructor(expected: number, got: number) {
    super("REPLICATION_GAP", `Replication entry ${got} arrived, but the next one this backup needs is ${expected}. Ask the main again from ${expected}.`, { status: 409 });
    this.name = "ReplicationGap";
  }
}

/** The main no longer keeps the entries a backup asks for: the backup needs a snapshot. */
export class LogTrimmed extends AppError {
  constructor(asked: number, first: number) {
    super("LOG_TRIMMED", `Replication entries after ${asked} are no longer kept (the log starts at ${first}); the backup needs a snapshot.`, { status: 410 });
    this.name = "LogTrimmed";
  }
}

/** A replication entry or snapshot page that is malformed or does not fit this database. Nothing was applied. */
export class InvalidReplicationEntry extends AppError {
  constructor(message: string) {
    super("REPLICATION_ENTRY_INVALID", `${message} Nothing was applied; the backup needs a fresh snapshot if this repeats.`, { status: 502 });
    this.name = "InvalidReplicationEntry";
  }
}

/** A snapshot call that does not fit the snapshot state (none in progress, another one in progress, or the main's log changed). */
export class SnapshotMismatch extends AppError {
  constructor(message: string) {
    super("SNAPSHOT_MISMATCH", message, { status: 409 });
    this.name = "SnapshotMismatch";
  }
}
