/** @jsxImportSource hono/jsx */
/**
 * The Backup groups panel's routes: the page, create or edit a group, delete
 * one. Every save sends the whole list to the main (its own pages, or a
 * level-3 client through `/console`), which checks it in core and keeps it or
 * refuses it unchanged; the refusal comes back beside its field. The Host,
 * password and Origin guards of app.tsx apply to all of them.
 */
import type { Context, Hono } from "hono";
import type { z } from "zod";
import { AppError, InvalidInput } from "../core/errors.ts";
import type { Permission } from "../core/permissions.ts";
import type { MachineStatus } from "../core/status.ts";
import type { BackupGroup } from "../core/backup-groups.ts";
import { backupGroupEditRefusal, MAIN_ROWS } from "../core/backup-group-offers.ts";
import { MAX_BACKUP_GROUPS } from "../core/backup-groups.ts";
import type { EngineBackups } from "../store/backup-groups-file.ts";
import { backupGroupFormSchema, deleteGroupFormSchema, groupFromForm, groupIdFor, routerFormSchema } from "./backup-group-forms.ts";
import { fieldErrors } from "./forms.ts";
import { backupGroupsView, routerTestWords, type GroupFormEcho } from "./view-models/backup-groups-view.ts";
import { parseHostPort } from "../core/config.ts";
import { probeVideohub, type RouterProbe } from "../services/router/videohub-probe.ts";
import { engineLicenses } from "../services/engine-licenses.ts";
import { systemClock, systemTimers } from "../net/system-time.ts";
import { BackupGroupsPage } from "./views/backup-groups.tsx";

/** What the panel needs from the machine. */
export interface BackupGroupsControl {
  status(): MachineStatus;
  permission(): Permission;
  /** Every group: a server's own, a client's from its servers (throws an AppError saying why not). */
  backupGroups(): Promise<EngineBackups>;
  /** Saves the router and every group on the main; throws an AppError and changes nothing. */
  saveBackupGroups(backups: EngineBackups): Promise<void>;
  /** "Test connection": one read of the router's state from this machine (default: the Videohub driver); throws a RouterError saying why not. */
  testRouter?(address: string): Promise<RouterProbe>;
}

const testVideohub = (address: string) => {
  const at = parseHostPort(address)!;
  return probeVideohub({ host: at.host, port: at.port, clock: systemClock, timers: systemTimers });
};

/** Form fields a core refusal may name; anything else is shown above the button. */
const FORM_FIELDS = new Set(["name", "backup", "backupSources", "router", "mode", "switchBack", "holdSeconds"]);

/** The field a core refusal is about, from its words (core/backup-groups.ts groupProblems). */
function refusedField(message: string): string {
  if (message.includes("outputs")) return "backupSources";
  if (message.includes("destination")) return "destinations";
  if (message.includes("machine")) return "backup";
  return "form";
}

/** Fields each form shows its refusals beside; a refusal about any other field is shown above the form's button. */
const GROUP_FIELDS_SHOWN = new Set(["name", "backup", "backupSources", "mode", "switchBack", "holdSeconds", "destinations", "form", ...Array.from({ length: MAIN_ROWS }, (_, i) => [`main${i}`, `main${i}Sources`, `main${i}Destinations`]).flat()]);
const ROUTER_FIELDS_SHOWN = new Set(["router", "routerEnabled"]);
function shownBeside(errors: Record<string, string>, shown: ReadonlySet<string>, fallback: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [field, message] of Object.entries(errors)) out[shown.has(field) ? field : fallback] ??= message;
  return out;
}

const stringsOf = (body: Record<string, unknown>) =>
  Object.fromEntries(Object.entries(body).filter(([, v]) => typeof v === "string").map(([k, v]) => [k, (v as string).slice(0, 400)])) as Record<string, string>;

export function registerBackupGroups(app: Hono, machine: BackupGroupsControl): void {
  const groupsNow = async (): Promise<EngineBackups | { error: string }> => {
    try {
      return await machine.backupGroups();
    } catch (error) {
      if (!(error instanceof AppError)) throw error;
      return { error: error.message };
    }
  };
  type Echoes = { group?: GroupFormEcho; router?: GroupFormEcho; editing?: BackupGroup | null };
  /** The license types the engines of the groups report, where this machine hears them (for the "licenses differ" warning). */
  const licensesOf = async (backups: EngineBackups | { error: string }) => {
    if ("error" in backups) return {};
    const named = new Set(backups.groups.flatMap((g) => [...g.mains.map((m) => m.machineId), g.backup.machineId]));
    return engineLicenses((machine.status().failover?.peers ?? []).filter((p) => named.has(p.id)));
  };
  const page = async (c: Context, status: 200 | 400 | 403 | 409 | 502 | 503, echoes: Echoes = {}) => {
    const backups = await groupsNow();
    const view = backupGroupsView(machine.status(), machine.permission(), backups, await licensesOf(backups));
    return c.html(<BackupGroupsPage view={view} echo={echoes.group} routerEcho={echoes.router} editing={echoes.editing} />, status);
  };
  /** A refusal as the form shows it: beside the field it is about (the core's checks say it in words). */
  const refusal = (error: AppError): Record<string, string> => {
    const field = error instanceof InvalidInput ? error.field : undefined;
    if (field !== undefined && FORM_FIELDS.has(field)) return { [field]: error.message };
    if (error.code === "BACKUP_GROUP_REFUSED") return { [refusedField(error.message)]: `Not saved: ${error.message}.` };
    return { form: error.message };
  };
  const statusOf = (error: AppError) => ([400, 403, 409, 503].includes(error.status) ? error.status : 409) as 400 | 403 | 409 | 503;

  /** Saves `change(current)`; a refusal re-renders the form with what was typed. */
  const save = async (c: Context, form: "group" | "router", values: Record<string, string>, change: (current: EngineBackups) => EngineBackups, saved: string) => {
    try {
      const current = await machine.backupGroups();
      await machine.saveBackupGroups(change(current));
    } catch (error) {
      if (!(error instanceof AppError)) throw error;
      return page(c, statusOf(error), { [form]: { values, errors: refusal(error) } });
    }
    return page(c, 200, { [form]: { saved } });
  };

  app.get("/backup-groups", async (c) => {
    const backups = await groupsNow();
    const editId = c.req.query("edit");
    const editing = editId && !("error" in backups) ? (backups.groups.find((g) => g.id === editId) ?? null) : null;
    return page(c, 200, { editing });
  });

  app.post("/backup-groups", async (c) => {
    const values = stringsOf(await c.req.parseBody());
    const form = backupGroupFormSchema.safeParse(values);
    if (!form.success) return page(c, 400, { group: { values, errors: shownBeside(fieldErrors(form.error as z.ZodError), GROUP_FIELDS_SHOWN, "form") } });
    const f = form.data;
    return save(
      c,
      "group",
      values,
      (current) => {
        if (f.id !== "" && !current.groups.some((g) => g.id === f.id)) throw new InvalidInput("That group is no longer on the main: it was deleted meanwhile.", "form");
        if (f.id === "" && current.groups.length >= MAX_BACKUP_GROUPS) throw new InvalidInput(`A setup has at most ${MAX_BACKUP_GROUPS} backup groups: add the engines to an existing group, or delete one first.`, "form");
        const id = f.id !== "" ? f.id : groupIdFor(f.name, current.groups.map((g) => g.id));
        const group = groupFromForm(f, id);
        return { ...current, groups: f.id !== "" ? current.groups.map((g) => (g.id === id ? group : g)) : [...current.groups, group] };
      },
      f.id !== "" ? `Backup group ${f.name} saved.` : `Backup group ${f.name} created.`,
    );
  });

  app.post("/backup-groups/delete", async (c) => {
    const form = deleteGroupFormSchema.safeParse(await c.req.parseBody());
    if (!form.success) return page(c, 400, { group: { errors: { form: form.error.issues[0]!.message } } });
    const { id } = form.data;
    return save(
      c,
      "group",
      {},
      (current) => {
        if (!current.groups.some((g) => g.id === id)) throw new InvalidInput("That group is no longer on the main: it was deleted meanwhile. Nothing changed.", "form");
        return { ...current, groups: current.groups.filter((g) => g.id !== id) };
      },
      "Backup group deleted.",
    );
  });

  /** Connects, reads the dump and says what it found or why not; saves nothing (the form's values come back as typed). */
  app.post("/backup-groups/router/test", async (c) => {
    const values = stringsOf(await c.req.parseBody());
    const refusal = backupGroupEditRefusal(machine.status(), machine.permission());
    if (refusal !== null) return page(c, 403, { router: { values, errors: { router: refusal } } });
    const form = routerFormSchema.safeParse(values);
    if (!form.success) return page(c, 400, { router: { values, errors: shownBeside(fieldErrors(form.error as z.ZodError), ROUTER_FIELDS_SHOWN, "router") } });
    try {
      const found = await (machine.testRouter?.bind(machine) ?? testVideohub)(form.data.router);
      return page(c, 200, { router: { values, tested: { ok: true, text: routerTestWords(form.data.router, found) } } });
    } catch (error) {
      if (!(error instanceof AppError)) throw error;
      return page(c, 502, { router: { values, tested: { ok: false, text: `Test failed: ${error.message}${/[.?!]$/.test(error.message) ? "" : "."} Nothing was saved.` } } });
    }
  });

  app.post("/backup-groups/router", async (c) => {
    const values = stringsOf(await c.req.parseBody());
    const form = routerFormSchema.safeParse(values);
    if (!form.success) return page(c, 400, { router: { values, errors: shownBeside(fieldErrors(form.error as z.ZodError), ROUTER_FIELDS_SHOWN, "router") } });
    const router = { address: form.data.router, enabled: form.data.routerEnabled === "on" };
    return save(c, "router", values, (current) => ({ ...current, router }), router.enabled ? `Router ${router.address} saved; the active server connects to it.` : `Router ${router.address} saved (connection off).`);
  });
}
