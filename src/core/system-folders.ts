/**
 * Folders that hold the operating system's own files, refused as a show folder (§Show folder):
 * a push would send them to every machine (as root, /etc/shadow too) and a pull could overwrite
 * them. Pure: the caller resolves links first (realpath), so a link into one is refused as well.
 * Both path forms are checked on every platform; a Windows path never names a POSIX folder.
 */

/** POSIX system folders, refused with everything inside them. macOS keeps /etc in /private/etc. */
const POSIX_SYSTEM_FOLDERS = ["/etc", "/proc", "/sys", "/dev", "/boot", "/usr", "/var", "/bin", "/sbin", "/lib", "/lib64", "/run", "/private/etc", "/System"];
const WINDOWS_FOLDER = /^[a-z]:\\windows(\\|$)/i;

const WHY = "which holds the operating system's own files: a push would send them to every machine and a pull could overwrite them";

/** Why `path` (absolute, links resolved) is a system folder or inside one, or undefined; `shown` is how the operator typed it. */
export function systemFolderReason(path: string, shown: string = path): string | undefined {
  // "/etc is …" as typed; "/srv/show leads to /etc, …" through a link.
  const say = (what: string, advice: string) => `${shown === path ? `${shown} is ${what}` : `${shown} leads to ${path}, ${what}`}, ${WHY}. ${advice}`;
  const windows = path.replace(/\//g, "\\");
  if (/^[a-z]:\\/i.test(windows)) return WINDOWS_FOLDER.test(windows) ? say("in the Windows folder", "Choose a folder of show files outside it.") : undefined;
  const posix = path.length > 1 ? path.replace(/\/+$/, "") : path;
  if (posix === "/") return say("the root of the whole disk", "Choose a folder of show files.");
  const folder = POSIX_SYSTEM_FOLDERS.find((system) => posix === system || posix.startsWith(`${system}/`));
  if (folder === undefined) return undefined;
  return say(posix === folder ? "a system folder" : `inside ${folder}, a system folder`, "Choose a folder of show files outside it.");
}
