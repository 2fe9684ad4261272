/** The status chip's engine state: which engines need the operator, and how the chip says it. */
import { expect, test } from "bun:test";
import { consoleChip, type ChipTone } from "../../../src/core/console-chip.ts";
import { engineAlerts, engineChip, type EngineAlert } from "../../../src/core/engine-chip.ts";
import type { EngineStatus } from "../../../src/core/engine-failover.ts";
import { peer, statusFixture } from "../../support/status-fixture.ts";

const ALL_ON_AIR: Record<string, EngineStatus> = { green: { kind: "on-air", condition: "ok" }, spare: { kind: "standby", condition: "ok" } };
const GREEN_REPLACED: Record<string, EngineStatus> = { green: { kind: "replaced", by: "spare", condition: "silent", reason: "silent" }, spare: { kind: "standing-in", for: "green", condition: "ok" } };

const alertCases: { name: string; watch: Parameters<typeof engineAlerts>[0]; alerts: EngineAlert[] }[] = [
  { name: "no engine watch (a client)", watch: null, alerts: [] },
  { name: "every engine on air", watch: { active: true, engines: ALL_ON_AIR }, alerts: [] },
  { name: "a main on its backup", watch: { active: true, engines: GREEN_REPLACED }, alerts: [{ engine: "green", backup: "spare", condition: "silent", manual: false }] },
  { name: "a server that does not serve now says nothing (its state is old)", watch: { active: false, engines: GREEN_REPLACED }, alerts: [] },
  {
    name: "the failed main with no backup free comes first",
    watch: { active: true, engines: { ...GREEN_REPLACED, blue: { kind: "failed-no-backup", condition: "frozen", why: "backup-busy" } } },
    alerts: [
      { engine: "blue", backup: null, condition: "frozen", manual: false },
      { engine: "green", backup: "spare", condition: "silent", manual: false },
    ],
  },
  {
    name: "failed in manual mode",
    watch: { active: true, engines: { green: { kind: "failed-no-backup", condition: "unhealthy", why: "manual-mode" }, spare: { kind: "standby", condition: "ok" } } },
    alerts: [{ engine: "green", backup: null, condition: "unhealthy", manual: true }],
  },
];

for (const c of alertCases) test(`alerts: ${c.name}`, () => expect(engineAlerts(c.watch)).toEqual(c.alerts));

const names: Record<string, string> = { green: "Green Main", spare: "Backup", blue: "Blue Main" };
const chipCases: { name: string; alerts: EngineAlert[]; chip: { text: string; tone: "warn" | "alert" } | null }[] = [
  { name: "nothing to say", alerts: [], chip: null },
  { name: "switched to the backup", alerts: [{ engine: "green", backup: "spare", condition: "silent", manual: false }], chip: { text: "Green Main – FAILED → switched to Backup", tone: "warn" } },
  { name: "fit again, the backup still on air", alerts: [{ engine: "green", backup: "spare", condition: "ok", manual: false }], chip: { text: "Green Main – OK, Backup still on air", tone: "warn" } },
  { name: "failed, no backup free", alerts: [{ engine: "blue", backup: null, condition: "frozen", manual: false }], chip: { text: "Blue Main – FAILED, no backup free", tone: "alert" } },
  { name: "failed in manual mode", alerts: [{ engine: "blue", backup: null, condition: "frozen", manual: true }], chip: { text: "Blue Main – FAILED, switch by hand", tone: "alert" } },
  {
    name: "several: the first, and how many more",
    alerts: [
      { engine: "blue", backup: null, condition: "frozen", manual: false },
      { engine: "green", backup: "spare", condition: "silent", manual: false },
    ],
    chip: { text: "Blue Main – FAILED, no backup free (+1 more)", tone: "alert" },
  },
];

for (const c of chipCases) {
  test(`chip: ${c.name}`, () => {
    const chip = engineChip(c.alerts, (id) => names[id] ?? id);
    expect(chip && { text: chip.text, tone: chip.tone }).toEqual(c.chip);
  });
}

const switched: EngineAlert[] = [{ engine: "c0c0c0c0c0c0c0c0", backup: "d0d0d0d0d0d0d0d0", condition: "silent", manual: false }];
const engines = [peer({ id: "c0c0c0c0c0c0c0c0", name: "render-1", role: "client" }), peer({ id: "d0d0d0d0d0d0d0d0", name: "render-spare", role: "client" })];
const statusCases: { name: string; status: ReturnType<typeof statusFixture>; text: string; tone: ChipTone }[] = [
  { name: "a healthy main with an engine on its backup: the engine state, machines by name", status: statusFixture({ engines: switched }, { peers: [peer(), ...engines] }), text: "render-1 – FAILED → switched to render-spare", tone: "warn" },
  { name: "an engine not heard is named by its id", status: statusFixture({ engines: switched }), text: "c0c0c0c0c0c0c0c0 – FAILED → switched to d0d0d0d0d0d0d0d0", tone: "warn" },
  { name: "no engine alert: the server's own chip", status: statusFixture({ engines: [] }), text: "Backup is idle", tone: "ok" },
  { name: "an older build's status without engines", status: statusFixture({ engines: undefined as unknown as [] }), text: "Backup is idle", tone: "ok" },
  { name: "the backup server serving outranks the engines", status: statusFixture({ chip: "Backup is active", engines: switched }, { state: "rejoining" }), text: "Backup is active", tone: "alert" },
];

for (const c of statusCases) {
  test(`console chip: ${c.name}`, () => {
    const chip = consoleChip(c.status);
    expect({ text: chip.text, tone: chip.tone }).toEqual({ text: c.text, tone: c.tone });
  });
}
