import { expect, test } from "bun:test";
import { systemFolderReason } from "../../../src/core/system-folders.ts";

test("system folders and everything inside them are refused, with the reason; look-alikes and show folders are not", () => {
  for (const path of ["/etc", "/etc/", "/proc", "/proc/self", "/sys", "/dev", "/boot", "/usr", "/usr/local/show", "/var", "/var/lib/x", "/", "C:\\Windows", "c:\\windows\\System32", "C:/Windows/Temp"]) {
    expect(systemFolderReason(path)).toContain("which holds the operating system's own files");
  }
  for (const path of ["/etcetera", "/srv/show", "/home/op/show", "/tmp/show", "D:\\show", "C:\\Windowsill", "C:\\"]) expect(systemFolderReason(path)).toBeUndefined();
});

test("a link names both what was typed and where it leads", () => {
  expect(systemFolderReason("/etc/ssh", "/srv/show")).toBe(
    "/srv/show leads to /etc/ssh, inside /etc, a system folder, which holds the operating system's own files: a push would send them to every machine and a pull could overwrite them. Choose a folder of show files outside it.",
  );
});
