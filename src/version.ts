/** Version and commit, stamped in by build.ts; source runs say "dev". */
declare const UNDERSTUDY_VERSION: string | undefined;
declare const UNDERSTUDY_COMMIT: string | undefined;

export const VERSION = typeof UNDERSTUDY_VERSION === "string" ? UNDERSTUDY_VERSION : "0.0.0-dev";
export const COMMIT = typeof UNDERSTUDY_COMMIT === "string" ? UNDERSTUDY_COMMIT : "source";
