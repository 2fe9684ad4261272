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
import { permissionLevelSchema, seesOthers, type Permission, type PermissionLevel } from "../core/permissions.ts";
import type { HistorySnapshot } from "../core/status-history.ts";
import { StatusBar } from "./views/status-bar.tsx";
import { PANELS, type Panel } from "./views/layout.tsx";
import { AddBackupForm, BACKUP_ADDED_HEADERS, BackupAdded, MachinesLive, MachinesPage, PermissionsCard } from "./views/machines.tsx";
import { delaysView, routingView, statusPanelView } from "./view-models/panels-view.ts";
import { statusBarView } from "./view-models/status-bar-view.ts";
import { machinesView as buildMachinesView, type Discovered, type MachinesView } from "./view-models/machines-view.ts";
import { DelaysPage, DelayTable, RoutingPage, RoutingTable, StatusFacts, StatusPage } from "./views/panels.tsx";
import { liveStream } from "./live-stream.ts";
import { machineRows } from "../core/machine-rows.ts";
import { backOnMain } from "../core/machines-offers.ts";
import { renderMetrics } from "./metrics.ts";
import { StorageLive } from "./views/storage.tsx";
import { registerStorage, storageView, type StorageControl } from "./storage-routes.tsx";
import { withDefaultPort } from "./forms.ts";
import type { RosterEntry } from "../services/console-service.ts";
import { registerBackupGroups, type BackupGroupsControl } from "./backup-group-routes.tsx";
import { registerHealth, type HealthControl } from "./health-routes.tsx";
import { healthView } from "./view-models/health-view.ts";
import { HealthLive } from "./views/health.tsx";

/** What the console needs from the machine (the Synced storage panel's part in storage-routes.tsx). */
export interface ConsoleControl extends StorageControl, BackupGroupsControl, HealthControl {
  status(): MachineStatus;
  discovered(): Discovered;
  history(): HistorySnapshot;
  /** How long after its last heartbeat a peer still counts as heard (the failover timeout). */
  heardWithinMs(): number;
  /** Add Backup server: the pairing exchange, now. Throws an AppError saying why not. */
  addBackup(address: string): Promise<{ peerName: string }>;
  removeBackup(): Promise<void>;
  /** A backup's own page: let go of the main it is paired with. */
  forgetMain(): void;
  /** Manual failback (the main's own UI, or a level-3 client asking the main); resolves with what happened. */
  switchBack(): Promise<string>;
  /** What this machine's pages may do (null: a server's own pages, everything). */
  permission(): Permission;
  /** The main: every client's permission level. */
  levels(): Record<string, PermissionLevel>;
  /** A client: the other clients as its server hears them (none at level 1). */
  otherClients(): RosterEntry[];
  setLevel(machineId: string, level: PermissionLevel): void;
}

export const permissionFormSchema = z.object({
  machine: z.string({ message: "Choose a machine." }).regex(/^[0-9a-f]{16}$/, "That is not a machine id."),
  level: permissionLevelSchema,
});

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
    const viewer = { permission: machine.permission(), levels: machine.levels(), others: machine.otherClients() };
    return buildMachinesView(machine.status(), machine.discovered(), machine.heardWithinMs(), viewer);
  };
  /** A level-1 client sees no other client's delays either. */
  const history = () => {
    const h = machine.history();
    return seesOthers(machine.permission()) ? h : { ...h, peers: h.peers.filter((p) => p.role !== "client") };
  };

  /** The live parts of a panel, each swapped out of band by its id. */
  const liveParts = (panel: Panel) => {
    const status = machine.status();
    const bar = <StatusBar bar={statusBarView(status)} outOfBand />;
    switch (panel) {
      case "status":
        return <>{bar}<StatusFacts view={statusPanelView(status, history())} outOfBand /></>;
      case "machines":
        return <>{bar}<MachinesLive view={machinesView()} outOfBand /></>;
      case "delays":
        return <>{bar}<DelayTable view={delaysView(status, history())} outOfBand /></>;
      case "routing":
        return <>{bar}<RoutingTable view={routingView(status, machinesView().rows)} outOfBand /></>;
      case "storage":
        return <>{bar}<StorageLive view={{ ...storageView(machine), status }} /></>;
      case "health":
        return machine.engineHealth().then((watch) => <>{bar}<HealthLive view={healthView(status, machine.permission(), watch)} outOfBand /></>);
      case "setup":
      case "backup-groups":
        return bar;
    }
  };

  app.get("/events", (c) => {
    const query = liveQuerySchema.safeParse(c.req.query());
    if (!query.success) throw new AppError("UNKNOWN_PANEL", "Unknown panel: open one from the navigation.", { status: 400 });
    return liveStream(c, async () => String(await liveParts(query.data.panel)));
  });

  app.get("/favicon.ico", (c) => c.body(null, 204));
  app.get("/status", (c) => c.html(<StatusPage view={statusPanelView(machine.status(), history())} />));
  app.get("/machines", (c) => c.html(<MachinesPage view={machinesView()} />));
  app.get("/delays", (c) => c.html(<DelaysPage view={delaysView(machine.status(), history())} />));
  app.get("/routing", (c) => c.html(<RoutingPage view={routingView(machine.status(), machinesView().rows)} />));
  registerStorage(app, machine);
  registerBackupGroups(app, machine);
  registerHealth(app, machine);
  app.get("/metrics", (c) => c.text(renderMetrics(machine.status(), machine.history()), 200, { "content-type": "text/plain; version=0.0.4; charset=utf-8" }));

  app.post("/machines/backup", async (c) => {
    const body = await c.req.parseBody();
    const typed = typeof body.address === "string" ? body.address : "";
    const form = backupAddressSchema.safeParse(body);
    const fromClient = machinesView().offers.addBackupFromClient;
    if (!form.success) return c.html(<AddBackupForm value={typed} error={form.error.issues[0]!.message} fromClient={fromClient} />, 400);
    try {
      const { peerName } = await machine.addBackup(form.data.address);
      return c.html(<BackupAdded saved={`${peerName} is now the backup server: it is copying what this main holds.`} />, 200, BACKUP_ADDED_HEADERS);
    } catch (error) {
      if (!(error instanceof AppError)) throw error;
      return c.html(<AddBackupForm value={typed} error={error.message} fromClient={fromClient} />, error.status as 400);
    }
  });

  app.post("/machines/backup/remove", async (c) => {
    await machine.removeBackup();
    return c.html(<p class="saved" role="status">The backup server is removed.</p>);
  });

  /** A backup's own operator (the usual Host and CSRF checks apply to every POST); the page asks for a confirmation first. */
  app.post("/machines/main/forget", (c) => {
    machine.forgetMain();
    return c.html(<p class="saved" role="status">This backup has forgotten its main: it follows no main until one pairs with it again.</p>);
  });

  /**
   * Switching back shows its progress until it ends ("Back on the main server"): the element
   * asks again every second while it has not (bounded by the page: it stops when it ends or the page closes).
   */
  const switchBackProgress = (said: string) =>
    backOnMain(machine.status()) ? (
      <p class="saved" role="status" data-testid="switch-back-done">
        Back on the main server.
      </p>
    ) : (
      <p class="saved" role="status" hx-get="/failover/switch-back/progress" hx-trigger="every 1s" hx-swap="outerHTML" data-testid="switch-back-progress">
        {said}
      </p>
    );
  app.get("/failover/switch-back/progress", (c) => c.html(switchBackProgress("Switching back to the main server…")));

  /** The main's own UI, or a level-3 client (refused with 403 below that); a repeated click is answered calmly. */
  app.post("/failover/switch-back", async (c) => {
    try {
      return c.html(switchBackProgress(await machine.switchBack()));
    } catch (error) {
      if (!(error instanceof AppError)) throw error;
      return c.html(<p class="field-error" role="alert">{error.message}</p>, error.status as 400);
    }
  });

  app.post("/machines/permission", async (c) => {
    const form = permissionFormSchema.safeParse(await c.req.parseBody());
    if (!form.success) return c.html(<PermissionsCard view={machinesView()} error={form.error.issues[0]!.message} />, 400);
    try {
      machine.setLevel(form.data.machine, form.data.level);
    } catch (error) {
      if (!(error instanceof AppError)) throw error;
      return c.html(<PermissionsCard view={machinesView()} error={error.message} />, error.status as 400);
    }
    return c.html(<PermissionsCard view={machinesView()} saved={`Permission level ${form.data.level} set.`} />);
  });
}
