/** @jsxImportSource hono/jsx */
/**
 * The operator console's panels (Status, Machines, Delays, Routing), their
 * live stream, the Machines panel's actions and /metrics. Handlers throw
 * AppErrors; failed forms come back with what was typed and the reason.
 */
import type { Hono } from "hono";
import { z } from "zod";
import { AppError } from "../core/errors.ts";
import { parseHostPort } from "../core/config.ts";
import type { MachineStatus } from "../core/status.ts";
import type { HistorySnapshot } from "../machine/status-history.ts";
import { StatusBar } from "../../views/status-bar.tsx";
import { PANELS, type Panel } from "../../views/layout.tsx";
import { AddBackupCard, MachinesLive, MachinesPage, type Discovered, type MachinesView } from "../../views/machines.tsx";
import { DelaysPage, DelayTable, RoutingPage, RoutingTable, StatusFacts, StatusPage } from "../../views/panels.tsx";
import { liveStream } from "./live-stream.ts";
import { machineRows } from "./machine-rows.ts";
import { renderMetrics } from "./metrics.ts";
import { withDefaultPort } from "./forms.ts";

/** What the console needs from the machine. */
export interface ConsoleControl {
  status(): MachineStatus;
  discovered(): Discovered;
  history(): HistorySnapshot;
  /** How long after its last heartbeat a peer still counts as heard (the failover timeout). */
  heardWithinMs(): number;
  /** Add Backup server: the pairing exchange, now. Throws an AppError saying why not. */
  addBackup(address: string): Promise<{ peerName: string }>;
  removeBackup(): Promise<void>;
  /** Manual failback: let the main take the network back from the backup. */
  switchBack(): void;
}

/** An IP address, with the peer port when it is not the default one. */
export const backupAddressSchema = z.object({
  address: z
    .string({ message: "Type the backup server's IP address, or pick a machine found on the network." })
    .trim()
    .min(1, "Type the backup server's IP address, or pick a machine found on the network.")
    .max(300, "That is far too long for an address.")
    .transform(withDefaultPort)
    .refine((s) => parseHostPort(s) !== null, { message: "Type an IP address such as 10.0.0.2 (or 10.0.0.2:7401)." }),
});

const liveQuerySchema = z.object({ panel: z.enum(PANELS, { message: "Unknown panel." }) });

export function registerConsole(app: Hono, machine: ConsoleControl): void {
  const machinesView = (): MachinesView => {
    const status = machine.status();
    const discovered = machine.discovered();
    return { status, discovered, rows: machineRows(status, discovered.machines, machine.heardWithinMs()) };
  };

  /** The live parts of a panel, each swapped out of band by its id. */
  const liveParts = (panel: Panel) => {
    const status = machine.status();
    const bar = <StatusBar status={status} outOfBand />;
    switch (panel) {
      case "status":
        return <>{bar}<StatusFacts status={status} history={machine.history()} outOfBand /></>;
      case "machines":
        return <>{bar}<MachinesLive view={machinesView()} outOfBand /></>;
      case "delays":
        return <>{bar}<DelayTable status={status} history={machine.history()} outOfBand /></>;
      case "routing":
        return <>{bar}<RoutingTable status={status} rows={machinesView().rows} outOfBand /></>;
      case "setup":
        return bar;
    }
  };

  app.get("/events", (c) => {
    const query = liveQuerySchema.safeParse(c.req.query());
    if (!query.success) throw new AppError("UNKNOWN_PANEL", "Unknown panel: open one from the navigation.", { status: 400 });
    return liveStream(c, async () => String(await liveParts(query.data.panel)));
  });

  app.get("/favicon.ico", (c) => c.body(null, 204));
  app.get("/status", (c) => c.html(<StatusPage status={machine.status()} history={machine.history()} />));
  app.get("/machines", (c) => c.html(<MachinesPage view={machinesView()} />));
  app.get("/delays", (c) => c.html(<DelaysPage status={machine.status()} history={machine.history()} />));
  app.get("/routing", (c) => c.html(<RoutingPage status={machine.status()} rows={machinesView().rows} />));
  app.get("/metrics", (c) => c.text(renderMetrics(machine.status(), machine.history()), 200, { "content-type": "text/plain; version=0.0.4; charset=utf-8" }));

  app.post("/machines/backup", async (c) => {
    const body = await c.req.parseBody();
    const typed = typeof body.address === "string" ? body.address : "";
    const form = backupAddressSchema.safeParse(body);
    if (!form.success) return c.html(<AddBackupCard view={machinesView()} value={typed} error={form.error.issues[0]!.message} />, 400);
    try {
      const { peerName } = await machine.addBackup(form.data.address);
      return c.html(<AddBackupCard view={machinesView()} saved={`${peerName} is now the backup server: it is copying what this main holds.`} />);
    } catch (error) {
      if (!(error instanceof AppError)) throw error;
      return c.html(<AddBackupCard view={machinesView()} value={typed} error={error.message} />, error.status as 400);
    }
  });

  app.post("/machines/backup/remove", async (c) => {
    await machine.removeBackup();
    return c.html(<p class="saved" role="status">The backup server is removed.</p>);
  });

  /** Repeating the click after the switch is harmless: the answer says the main serves again. */
  app.post("/failover/switch-back", (c) => {
    const status = machine.status();
    const isMain = status.role === "main" || status.role === "server";
    if (isMain && status.failover?.state === "standby") {
      machine.switchBack();
      return c.html(<p class="saved" role="status">Switching back to the main server…</p>);
    }
    if (isMain && status.failover?.state === "active") return c.html(<p class="saved" role="status">The main server serves the network.</p>);
    throw new AppError("NOTHING_TO_SWITCH_BACK", "Switching back is done on the main server, once it is back and waits for it.", { status: 409 });
  });
}
