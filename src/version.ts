/** Version (from package.json) and commit (stamped in by build.ts; source runs say "source"). */
import pkg from "../package.json";

declare const UNDERSTUDY_COMMIT: string | undefined;

export const VERSION: string = pkg.version;
export const COMMIT = typeof UNDERSTUDY_COMMIT === "string" ? UNDERSTUDY_COMMIT : "source";
