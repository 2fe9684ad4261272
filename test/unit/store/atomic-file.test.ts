import { expect, test } from "bun:test";
import { tempNameFor } from "../../../src/store/atomic-file.ts";

test("a temp name stays within 255 bytes whatever the target's name, and differs per target", () => {
  expect(tempNameFor("config.json", 42)).toBe(".config.json.42.tmp");
  const longest = "é".repeat(127) + "x";
  expect(Buffer.byteLength(longest)).toBe(255);
  const temp = tempNameFor(longest, 4_194_304);
  expect(Buffer.byteLength(temp)).toBeLessThanOrEqual(255);
  expect(temp).not.toBe(tempNameFor(`${longest.slice(0, -1)}y`, 4_194_304));
});
