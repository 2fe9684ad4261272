/** The show folder's refusals (show-folder.ts): each says what to do, and that nothing was written where that holds. */
import { AppError } from "../../core/errors.ts";

const list = (paths: readonly string[]) => paths.map((p) => JSON.stringify(p)).join(", ");

/** state.json does not parse or is not a state this version knows. */
export class ShowFolderStateDamaged extends AppError {
  readonly file: string;
  constructor(file: string, why: string, cause?: unknown) {
    super(
      "SHOW_FOLDER_STATE_DAMAGED",
      `${file} is damaged (${why}), so this folder no longer knows which revision it is at. Delete that file and pull again: files that match the server are kept, and any that differ are listed, never overwritten.`,
      { status: 500, cause },
    );
    this.name = "ShowFolderStateDamaged";
    this.file = file;
  }
}

/** A pull would overwrite (or delete) files changed here since the base. Nothing was written. */
export class LocalChangesInTheWay extends AppError {
  readonly paths: readonly string[];
  constructor(dir: string, paths: readonly string[], base: number) {
    super(
      "LOCAL_CHANGES_IN_THE_WAY",
      `Pull refused: ${list(paths)} changed in ${dir} since revision ${base}, and the server has other versions of them. Move your copies out of the folder (or push them first, if nobody else changed them), pull, then bring your changes back and push. Nothing was written.`,
      { status: 409 },
    );
    this.name = "LocalChangesInTheWay";
    this.paths = paths;
  }
}

/** A pulled path would land on a folder or a link, or go through a link, here. Nothing was written. */
export class PullTargetBlocked extends AppError {
  readonly path: string;
  constructor(dir: string, path: string, what: string) {
    super(
      "PULL_TARGET_BLOCKED",
      `Pull refused: the server has a file ${JSON.stringify(path)}, but ${what} in ${dir}. Move it out of the folder and pull again. Nothing was written.`,
      { status: 409 },
    );
    this.name = "PullTargetBlocked";
    this.path = path;
  }
}

/** The server's list of changes is not one a main sends (a key holder answering as the main, or a fault). Nothing was written. */
export class PullListRefused extends AppError {
  constructor(problem: string) {
    super("PULL_LIST_REFUSED", `Pull refused: the server's list of changes is not one a main server sends (${problem}). Nothing was written; check that the address is your main's.`, { status: 502 });
    this.name = "PullListRefused";
  }
}
