/** What a show-file path may be (core/show-paths.ts): table-driven. */
import { describe, expect, test } from "bun:test";
import {
  InvalidShowPath,
  MAX_SHOW_PATH_BYTES,
  MAX_SHOW_PATH_SEGMENT_BYTES,
  ShowPathCollision,
  ancestorFoldKeys,
  assertNoShowPathCollisions,
  findShowPathCollisions,
  showPathFoldKey,
  showPathProblem,
  validateShowPath,
} from "../../../src/core/show-paths.ts";

describe("valid paths", () => {
  const valid = [
    "scene.json",
    "graphics/lower-third.json",
    "a/b/c/d/e.txt",
    "Ünïcödé/名前.json",
    ".hidden",
    "..dots-inside..json",
    "a.b/c",
    "name with spaces/inner file.json",
    "x".repeat(MAX_SHOW_PATH_SEGMENT_BYTES),
    "console.json", // starts like CON but is not the device name
    "com10.txt",
  ];
  for (const path of valid) {
    test(JSON.stringify(path).slice(0, 60), () => {
      expect(showPathProblem(path)).toBeUndefined();
      expect(validateShowPath(path)).toBe(path);
    });
  }
});

describe("refused paths name the path and the reason", () => {
  const refused: [name: string, path: string, reason: string][] = [
    ["empty", "", "is empty"],
    ["parent folder", "../x", "reach outside the show folder"],
    ["parent folder inside", "a/../../x", "reach outside the show folder"],
    ["parent folder at the end", "a/..", "reach outside the show folder"],
    ["absolute", "/etc/passwd", "is absolute"],
    ["doubled slash", "a//b", "empty folder name"],
    ["trailing slash", "a/b/", "empty folder name"],
    ["current folder", "./a", '"." folder name'],
    ["drive letter with backslash", "C:\\x", "backslash"],
    ["drive letter", "C:x", "drive letter"],
    ["drive letter with slash", "d:/show/x", "drive letter"],
    ["backslash", "graphics\\logo.png", "backslash"],
    ["UNC", "\\\\server\\share", "backslash"],
    ["colon (alternate data stream)", "file.json:stream", "Windows does not allow"],
    ["question mark", "what?.json", "Windows does not allow"],
    ["NUL byte", "a\u0000b", "control character"],
    ["newline", "a\nb", "control character"],
    ["device name", "CON", "device name"],
    ["device name with extension", "graphics/nul.txt", "device name"],
    ["device name, other case", "Lpt1.json", "device name"],
    ["trailing dot", "name.", "ending in a dot or space"],
    ["trailing space", "folder /x", "ending in a dot or space"],
    ["segment too long", "y".repeat(MAX_SHOW_PATH_SEGMENT_BYTES + 1), `longer than ${MAX_SHOW_PATH_SEGMENT_BYTES} bytes`],
    ["segment too long in UTF-8", "é".repeat(128), `longer than ${MAX_SHOW_PATH_SEGMENT_BYTES} bytes`],
    ["path too long", Array.from({ length: 100 }, () => "abcdefghij").join("/"), `longer than ${MAX_SHOW_PATH_BYTES} bytes`],
    ["lone surrogate", "bad\ud800.json", "not valid Unicode"],
  ];
  for (const [name, path, reason] of refused) {
    test(name, () => {
      expect(showPathProblem(path)).toContain(reason);
      let thrown: unknown;
      try {
        validateShowPath(path);
      } catch (error) {
        thrown = error;
      }
      expect(thrown).toBeInstanceOf(InvalidShowPath);
      const error = thrown as InvalidShowPath;
      expect(error.code).toBe("INVALID_SHOW_PATH");
      expect(error.status).toBe(400);
      expect(error.path).toBe(path);
      expect(error.message).toContain(JSON.stringify(path));
      expect(error.message).toContain(reason);
    });
  }
});

describe("collisions on case-insensitive file systems", () => {
  test("fold keys ignore case and Unicode form", () => {
    expect(showPathFoldKey("Graphics/Logo.PNG")).toBe("graphics/logo.png");
    expect(showPathFoldKey("cafe\u0301.json")).toBe(showPathFoldKey("CAF\u00c9.json"));
    expect(ancestorFoldKeys("A/B/c.txt")).toEqual(["a", "a/b"]);
    expect(ancestorFoldKeys("top.txt")).toEqual([]);
  });

  const cases: [name: string, paths: string[], expected: ReturnType<typeof findShowPathCollisions>][] = [
    ["distinct names", ["a.json", "b.json", "dir/a.json"], []],
    ["the same path twice is one path", ["a.json", "a.json"], []],
    ["case only", ["Scene.json", "scene.json"], [{ path: "Scene.json", other: "scene.json", kind: "same-name" }]],
    ["case in a folder name", ["GFX/a.json", "gfx/a.json"], [{ path: "GFX/a.json", other: "gfx/a.json", kind: "same-name" }]],
    ["Unicode form", ["cafe\u0301.json", "caf\u00e9.json"], [{ path: "cafe\u0301.json", other: "caf\u00e9.json", kind: "same-name" }]],
    ["file and folder", ["a", "a/b.json"], [{ path: "a", other: "a/b.json", kind: "file-and-folder" }]],
    ["file and folder differing in case", ["Logos", "logos/x.png"], [{ path: "Logos", other: "logos/x.png", kind: "file-and-folder" }]],
    ["a folder with several files is fine", ["gfx/a", "Gfx/b"], []],
  ];
  for (const [name, paths, expected] of cases) {
    test(name, () => expect(findShowPathCollisions(paths)).toEqual(expected));
  }

  test("assertNoShowPathCollisions throws a 409 naming both paths", () => {
    expect(() => assertNoShowPathCollisions(["ok.json"])).not.toThrow();
    let thrown: unknown;
    try {
      assertNoShowPathCollisions(["Scene.json", "scene.json", "x"]);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(ShowPathCollision);
    const error = thrown as ShowPathCollision;
    expect(error.code).toBe("SHOW_PATH_COLLISION");
    expect(error.status).toBe(409);
    expect(error.message).toContain('"Scene.json" and "scene.json"');
    expect(error.pairs).toHaveLength(1);
  });
});

describe("the show folder's bookkeeping name", () => {
  test.each([".understudy/x", ".Understudy/state.json", "a/.UNDERSTUDY", "a/.uNdErStUdY/b"])("%s is refused in any letter case, at any depth", (path) => {
    expect(showPathProblem(path)).toContain("show folders keep their own bookkeeping in .understudy");
  });

  test.each([".understudy2/x", "understudy/x", "a/.understudy.txt"])("%s is a fine name", (path) => {
    expect(showPathProblem(path)).toBeUndefined();
  });
});
