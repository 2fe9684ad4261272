/**
 * The Backup groups panel's form: one group as typed (router ports counted
 * from 1, as the router's own panel labels them) parsed into a BackupGroup
 * (zero-based, as the Videohub protocol counts them). The rules between
 * groups (same output count, a destination in one group only) are the core's
 * (core/backup-groups.ts), checked when the main saves.
 */
import { z } from "zod";
import { MAIN_ROWS } from "../core/backup-group-offers.ts";
import { MAX_ENGINE_OUTPUTS, MAX_HOLD_TIME_MS, MAX_ROUTER_PORT, MIN_HOLD_TIME_MS, type BackupGroup } from "../core/backup-groups.ts";
import { parseHostPort } from "../core/config.ts";

/** Videohub's Ethernet protocol port (docs: "Blackmagic Videohub Ethernet protocol", TCP 9990). */
export const VIDEOHUB_PORT = 9990;

const PORTS_MESSAGE = `Type router port numbers 1 to ${MAX_ROUTER_PORT + 1}, separated by commas (such as 1, 2).`;
const machineId = z.string().regex(/^[0-9a-f]{16}$/, "Choose a machine from the list.");
const MIN_HOLD_S = MIN_HOLD_TIME_MS / 1000;
const MAX_HOLD_S = MAX_HOLD_TIME_MS / 1000;

/** "1, 2" → [0, 1]; empty → []. */
const portList = z
  .string()
  .trim()
  .max(400, PORTS_MESSAGE)
  .default("")
  .transform((s, ctx) => {
    if (s === "") return [];
    const parts = s.split(/[\s,]+/).filter((p) => p !== "");
    const numbers = parts.map((p) => (/^[0-9]{1,4}$/.test(p) ? Number(p) : NaN));
    if (numbers.some((n) => !Number.isInteger(n) || n < 1 || n > MAX_ROUTER_PORT + 1) || numbers.length > MAX_ENGINE_OUTPUTS) {
      ctx.addIssue({ code: "custom", message: PORTS_MESSAGE });
      return z.NEVER;
    }
    return numbers.map((n) => n - 1);
  });

/** "10.0.0.50" gets the Videohub port; "host:port" as typed. */
export const routerAddressSchema = z
  .string({ message: "Type the router's IP address, such as 10.0.0.50." })
  .trim()
  .min(1, "Type the router's IP address, such as 10.0.0.50.")
  .max(300, "That is far too long for an address.")
  .transform((s) => (parseHostPort(s) === null && parseHostPort(`${s}:${VIDEOHUB_PORT}`) !== null ? `${s}:${VIDEOHUB_PORT}` : s))
  .refine((s) => (parseHostPort(s)?.port ?? 0) > 0, { message: "Type the router's IP address, such as 10.0.0.50 (or 10.0.0.50:9990)." });

const mainRowFields = Object.fromEntries(
  Array.from({ length: MAIN_ROWS }, (_, i) => [
    [`main${i}`, z.union([z.literal(""), machineId]).default("")],
    [`main${i}Sources`, portList],
    [`main${i}Destinations`, portList],
  ]).flat(),
) as Record<string, z.ZodType>;

export const backupGroupFormSchema = z
  .object({
    /** Empty when creating; the group's id when editing it. */
    id: z.union([z.literal(""), z.string().regex(/^[a-z0-9-]{1,40}$/, "That is not a group of this main.")]).default(""),
    name: z.string({ message: "Name the group, such as Green." }).trim().min(1, "Name the group, such as Green.").max(64, "Keep the name under 64 characters."),
    backup: machineId,
    backupSources: portList,
    mode: z.enum(["auto", "manual"], { message: "Choose automatic or manual failover." }),
    switchBack: z.enum(["auto", "manual"], { message: "Choose automatic or manual switch back." }),
    holdSeconds: z.coerce
      .number({ message: "Type the hold time in seconds." })
      .int("Type whole seconds.")
      .min(MIN_HOLD_S, `The hold time is at least ${MIN_HOLD_S} s (no flapping).`)
      .max(MAX_HOLD_S, `Keep the hold time at most ${MAX_HOLD_S} s.`),
    ...mainRowFields,
  })
  .superRefine((f, ctx) => {
    const row = (i: number) => f[`main${i}` as keyof typeof f] as string;
    if (!Array.from({ length: MAIN_ROWS }, (_, i) => row(i)).some((m) => m !== "")) ctx.addIssue({ code: "custom", message: "Choose at least one main engine.", path: ["main0"] });
    if ((f.backupSources as number[]).length === 0) ctx.addIssue({ code: "custom", message: "Type the backup engine's router source(s).", path: ["backupSources"] });
    for (let i = 0; i < MAIN_ROWS; i++) {
      if (row(i) === "") continue;
      const sources = f[`main${i}Sources` as keyof typeof f] as number[];
      const destinations = f[`main${i}Destinations` as keyof typeof f] as number[];
      if (sources.length === 0) ctx.addIssue({ code: "custom", message: "Type this engine's router source(s).", path: [`main${i}Sources`] });
      if (destinations.length !== sources.length) ctx.addIssue({ code: "custom", message: "Type one destination for each source, in the same order.", path: [`main${i}Destinations`] });
    }
  });
export type BackupGroupForm = z.infer<typeof backupGroupFormSchema>;

/** A lower-case id from the name, unique among `taken`. */
export function groupIdFor(name: string, taken: readonly string[]): string {
  const base = name.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-+|-+$/g, "").slice(0, 32) || "group";
  let id = base;
  for (let n = 2; taken.includes(id); n++) id = `${base}-${n}`;
  return id;
}

/** The group the form describes; `id` is the one it keeps or gets. */
export function groupFromForm(f: BackupGroupForm, id: string): BackupGroup {
  const record = f as unknown as Record<string, unknown>;
  const mains = Array.from({ length: MAIN_ROWS }, (_, i) => i)
    .filter((i) => record[`main${i}`] !== "")
    .map((i) => {
      const sources = record[`main${i}Sources`] as number[];
      const destinations = record[`main${i}Destinations`] as number[];
      return { machineId: record[`main${i}`] as string, outputs: sources.map((source, n) => ({ source, destination: destinations[n]! })) };
    });
  return { id, name: f.name, mains, backup: { machineId: f.backup, sources: f.backupSources }, failoverMode: f.mode, switchBack: f.switchBack, holdTimeMs: f.holdSeconds * 1000 };
}

export const routerFormSchema = z.object({ router: routerAddressSchema, routerEnabled: z.literal("on", { message: "Tick Enable Videohub connection, or leave it unticked." }).optional() });

export const deleteGroupFormSchema = z.object({ id: z.string({ message: "Choose a group." }).regex(/^[a-z0-9-]{1,40}$/, "That is not a group of this main.") });
