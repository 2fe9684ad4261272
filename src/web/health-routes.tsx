/** @jsxImportSource hono/jsx */
/**
 * The Health panel's routes: the page and the manual switch (the active
 * server's own page; the Host, password and Origin guards of app.tsx apply).
 */
import type { Hono } from "hono";
import { z } from "zod";
import { AppError } from "../core/errors.ts";
import type { Permission } from "../core/permissions.ts";
import type { MachineStatus } from "../core/status.ts";
import { healthView, type EngineWatchView } from "./view-models/health-view.ts";
import { HealthPage } from "./views/health.tsx";

export interface HealthControl {
  status(): MachineStatus;
  permission(): Permission;
  /** The engine runner's view (a client's, from the server that serves); null where none is known. */
  engineHealth(): Promise<EngineWatchView | null>;
  /** Resolves with what happens, in words; rejects with an AppError saying why the switch was not made. */
  switchEngine(groupId: string, mainId: string, to: "backup" | "main"): Promise<string>;
}

export const engineSwitchFormSchema = z.object({
  group: z.string({ message: "Choose a group." }).regex(/^[a-z0-9][a-z0-9-]{0,63}$/, "That is not a backup group."),
  main: z.string({ message: "Choose an engine." }).min(1, "Choose an engine.").max(128, "That is not an engine of this group."),
  to: z.enum(["backup", "main"], { message: "Switch to the backup or back to the main." }),
});

export function registerHealth(app: Hono, machine: HealthControl): void {
  const view = async () => healthView(machine.status(), machine.permission(), await machine.engineHealth());
  app.get("/health", async (c) => c.html(<HealthPage view={await view()} />));
  app.post("/health/switch", async (c) => {
    const form = engineSwitchFormSchema.safeParse(await c.req.parseBody());
    if (!form.success) return c.html(<HealthPage view={await view()} message={{ ok: false, text: form.error.issues[0]!.message }} />, 400);
    const { group, main, to } = form.data;
    const before = await view();
    if (before.switchRefusal !== null) return c.html(<HealthPage view={before} message={{ ok: false, text: before.switchRefusal }} />, 403);
    let text: string;
    try {
      text = await machine.switchEngine(group, main, to);
    } catch (error) {
      if (!(error instanceof AppError)) throw error;
      const status = error.status === 403 || error.status === 503 ? error.status : 409;
      return c.html(<HealthPage view={await view()} message={{ ok: false, text: error.message }} />, status);
    }
    return c.html(<HealthPage view={await view()} message={{ ok: true, text }} />);
  });
}
