/**
 * What a path inside a show folder may be. Pure: no I/O.
 *
 * A show file is pulled into folders on Linux, macOS and Windows machines, so a
 * path must be acceptable to all three and must never reach outside the folder
 * it is written into. Two paths that a case-insensitive file system (Windows,
 * macOS by default) would store as one file are a collision, as is a path that
 * is a file in one place and a folder in another.
 */
import { AppError } from "./errors.ts";

/** Whole path, in UTF-8 bytes. Generous, but bounded so a path can't be used to fill memory or the database. */
export const MAX_SHOW_PATH_BYTES = 1024;
/** One folder or file name, in UTF-8 bytes: the limit of ext4, APFS and NTFS. */
export const MAX_SHOW_PATH_SEGMENT_BYTES = 255;
/** The folder a show folder keeps its state in; never a show file's folder or name. */
export const SHOW_FOLDER_STATE_NAME = ".understudy";

/** A path a show file may not hold. `reason` completes the sentence "Show-file path X ...". */
export class InvalidShowPath extends AppError {
  readonly path: string;
  readonly reason: string;
  constructor(path: string, reason: string) {
    super("INVALID_SHOW_PATH", `Show-file path ${JSON.stringify(path)} ${reason}. Nothing was written.`, { status: 400 });
    this.name = "InvalidShowPath";
    this.path = path;
    this.reason = reason;
  }
}

/** Two paths that would be one file, or a file and a folder of the same name, on some studio machine. */
export type ShowPathCollisionPair = {
  readonly path: string;
  readonly other: string;
  /** same-name: the paths differ only in letter case or Unicode form; file-and-folder: `other` needs `path` to be a folder. */
  readonly kind: "same-name" | "file-and-folder";
};

export class ShowPathCollision extends AppError {
  readonly pairs: readonly ShowPathCollisionPair[];
  constructor(pairs: readonly ShowPathCollisionPair[]) {
    const described = pairs.map((p) =>
      p.kind === "same-name"
        ? `${JSON.stringify(p.path)} and ${JSON.stringify(p.other)} would be the same file on Windows and macOS`
        : `${JSON.stringify(p.path)} is a file but ${JSON.stringify(p.other)} needs it to be a folder`,
    );
    super("SHOW_PATH_COLLISION", `${described.join("; ")}. Rename one of them; nothing was written.`, { status: 409 });
    this.name = "ShowPathCollision";
    this.pairs = pairs;
  }
}

// Device names Windows reserves in every folder, with or without an extension ("con.txt" too).
const WINDOWS_RESERVED_NAME = /^(con|prn|aux|nul|com[0-9¹²³]|lpt[0-9¹²³])(\..*)?$/i;
const WINDOWS_FORBIDDEN_CHARACTER = /[<>:"|?*]/;
const CONTROL_CHARACTER = /[\u0000-\u001f\u007f]/;
const DRIVE_LETTER = /^[A-Za-z]:/;
const utf8 = new TextEncoder();

/** Why `path` is not a valid show-file path, or undefined when it is. */
export function showPathProblem(path: string): string | undefined {
  if (path.length === 0) return "is empty";
  if (!path.isWellFormed()) return "is not valid Unicode";
  if (utf8.encode(path).length > MAX_SHOW_PATH_BYTES) return `is longer than ${MAX_SHOW_PATH_BYTES} bytes`;
  if (path.includes("\\")) return "contains a backslash; separate folders with /";
  if (path.startsWith("/")) return "is absolute; give it relative to the show folder";
  if (DRIVE_LETTER.test(path)) return "starts with a drive letter; give it relative to the show folder";
  if (CONTROL_CHARACTER.test(path)) return "contains a control character";
  const forbidden = WINDOWS_FORBIDDEN_CHARACTER.exec(path);
  if (forbidden) return `contains ${JSON.stringify(forbidden[0])}, which Windows does not allow in file names`;
  for (const segment of path.split("/")) {
    if (segment === "") return "has an empty folder name (a doubled or trailing /)";
    if (segment === "..") return 'contains "..", which would reach outside the show folder';
    if (segment === ".") return 'contains a "." folder name';
    if (segment.toLowerCase() === SHOW_FOLDER_STATE_NAME) return `uses ${JSON.stringify(segment)}: show folders keep their own bookkeeping in ${SHOW_FOLDER_STATE_NAME} (in any letter case, on Windows and macOS)`;
    if (utf8.encode(segment).length > MAX_SHOW_PATH_SEGMENT_BYTES) return `has a name longer than ${MAX_SHOW_PATH_SEGMENT_BYTES} bytes`;
    if (segment.endsWith(".") || segment.endsWith(" ")) return `has a name ending in a dot or space (${JSON.stringify(segment)}), which Windows drops`;
    if (WINDOWS_RESERVED_NAME.test(segment)) return `uses ${JSON.stringify(segment)}, a device name Windows reserves`;
  }
  return undefined;
}

/** Returns `path` if it is a valid show-file path; throws InvalidShowPath naming it otherwise. */
export function validateShowPath(path: string): string {
  const problem = showPathProblem(path);
  if (problem !== undefined) throw new InvalidShowPath(path, problem);
  return path;
}

/**
 * The key under which case-insensitive file systems compare names: Unicode NFC (macOS
 * hands out decomposed names) and lower case. Equal keys mean "the same file there".
 */
export function showPathFoldKey(path: string): string {
  return path.normalize("NFC").toLowerCase();
}

/** The fold keys of the folders that contain `path`, outermost first ("a/b/c" → "a", "a/b"). */
export function ancestorFoldKeys(path: string): string[] {
  const segments = showPathFoldKey(path).split("/");
  return segments.slice(0, -1).map((_, i) => segments.slice(0, i + 1).join("/"));
}

/**
 * Every collision among `paths` taken as one folder's contents. Identical strings
 * are the same path, not a collision. Each colliding pair is reported once.
 */
export function findShowPathCollisions(paths: Iterable<string>): ShowPathCollisionPair[] {
  const pairs: ShowPathCollisionPair[] = [];
  const byFold = new Map<string, string>();
  const unique = [...new Set(paths)];
  for (const path of unique) {
    const fold = showPathFoldKey(path);
    const first = byFold.get(fold);
    if (first === undefined) byFold.set(fold, path);
    else pairs.push({ path: first, other: path, kind: "same-name" });
  }
  for (const path of unique) {
    for (const folder of ancestorFoldKeys(path)) {
      const file = byFold.get(folder);
      if (file !== undefined) pairs.push({ path: file, other: path, kind: "file-and-folder" });
    }
  }
  return pairs;
}

/** Throws ShowPathCollision naming every colliding pair among `paths`. */
export function assertNoShowPathCollisions(paths: Iterable<string>): void {
  const pairs = findShowPathCollisions(paths);
  if (pairs.length > 0) throw new ShowPathCollision(pairs);
}
