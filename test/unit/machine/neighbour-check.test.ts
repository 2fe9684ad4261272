import { expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { neighbourRetransWarning, readNeighbourRetransMs } from "../../../src/machine/neighbour-check.ts";
import { tempDir } from "../../support/machine-process.ts";

test.each([
  [1000, 1000, true],
  [1000, 250, true],
  [100, 1000, false],
  [250, 1000, false],
  [100, 250, true],
])("re-ask every %d ms with a %d ms failover timeout: warn %p", (retrans, timeout, warns) => {
  const warning = neighbourRetransWarning(retrans, timeout);
  expect(warning !== null).toBe(warns);
  if (warning) expect(warning).toContain("sysctl -w net.ipv4.neigh.default.retrans_time_ms=100");
});

test("the setting is read where the system has it, and absent elsewhere", () => {
  const file = join(tempDir(), "retrans_time_ms");
  writeFileSync(file, "1000\n");
  expect(readNeighbourRetransMs(file)).toBe(1000);
  expect(readNeighbourRetransMs(join(tempDir(), "missing"))).toBeNull();
});
