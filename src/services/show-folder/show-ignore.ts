/**
 * `.understudyignore` at the top of a show folder: gitignore syntax (the npm
 * `ignore` package, as eslint uses), keeping matching files out of pushes. The
 * file itself is a show file like any other, so everyone shares the rules.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import ignore from "ignore";

export const IGNORE_FILE = ".understudyignore";

/** Whether a path (relative, forward slashes; folders end in "/") is ignored. */
export type IgnoreRule = (path: string) => boolean;

/** The folder's rules, or a rule that ignores nothing when it has no `.understudyignore`. */
export function loadIgnoreRule(dir: string): IgnoreRule {
  let text: string;
  try {
    text = readFileSync(join(dir, IGNORE_FILE), "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return () => false;
    throw error;
  }
  const rules = ignore().add(text);
  return (path) => rules.ignores(path);
}
