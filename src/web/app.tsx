/** @jsxImportSource hono/jsx */
/**
 * The setup pages and the local API as one Hono app. Built from its
 * dependencies so tests drive it with app.request(), without a socket.
 */
import { Hono, type Context } from "hono";
import type { HtmlEscapedString } from "hono/utils/html";
import { csrf } from "hono/csrf";
import { zValidator } from "@hono/zod-validator";
import type { z } from "zod";
import { AppError, InvalidInput } from "../core/errors.ts";
import type { MachineStatus } from "../core/status.ts";
import { FailbackSection, KeySection, LicenseSection, RoleSection, SetupPage, type FieldErrors } from "./views/setup.tsx";
import { setupView, type SetupFacts } from "./view-models/setup-view.ts";
import { statusBarView } from "./view-models/status-bar-view.ts";
import { StatusBar } from "./views/status-bar.tsx";
import { registerConsole, type ConsoleControl } from "./console-routes.tsx";
import { failbackFormSchema, fieldErrors, keyFormSchema, licenseFormSchema, roleFormSchema, type RoleForm } from "./forms.ts";
import type { StaticAsset } from "./static-assets.ts";
import type { Clock } from "../core/clock.ts";
import type { Logger } from "../log.ts";
import { hostAllowed, hostOfHeader } from "./host-allow-list.ts";
import { PasswordGuard } from "./password-guard.ts";
import { hubApiRoutes, type AttachHubApp } from "./hub-api.ts";
import { systemClock } from "../net/system-time.ts";

/** What the web edge needs from the machine (the console panels' part in console-routes.tsx). */
export interface MachineControl extends ConsoleControl {
  status(): MachineStatus;
  setupView(): SetupFacts;
  saveLicense(text: string): void;
  saveNetworkKey(text: string | null): Promise<void>;
  saveRole(form: RoleForm): Promise<void>;
  saveFailback(failback: "auto" | "manual"): void;
  /** Required for every request when the UI listens beyond loopback. */
  uiPassword(): string | null;
  /** Host names the setup pages answer to besides loopback and this machine's own (--ui-host). */
  uiHostNames(): string[];
  /** A local app of this machine's Data Hub uplink (the HTTP API); null without a network role. */
  attachHubApp: AttachHubApp;
}

export type WebAppOptions = { log?: Logger; clock?: Clock };

/** The client's address as Bun.serve saw it (the app's env is the server); "unknown" under app.request(). */
function sourceOf(c: Context): string {
  const server = c.env as { requestIP?: (r: Request) => { address: string } | null } | undefined;
  return server?.requestIP?.(c.req.raw)?.address ?? "unknown";
}

export function createWebApp(machine: MachineControl, assets: Map<string, StaticAsset>, options: WebAppOptions = {}): Hono {
  const app = new Hono();
  const passwords = new PasswordGuard(options.clock ?? systemClock, options.log ?? null);
  const setupPageView = () => setupView(machine.setupView());

  // Before anything else: a request under a name that is not this machine's is DNS rebinding (CSRF alone compares Origin with that same Host).
  app.use("*", async (c, next) => {
    const host = c.req.header("host") ?? new URL(c.req.url).host;
    if (hostAllowed(host, machine.uiHostNames())) return next();
    const shown = (hostOfHeader(host) ?? "(none)").slice(0, 100);
    return c.text(`This machine does not answer to the name "${shown}". Open the setup pages by its address, or add the name with --ui-host.`, 421);
  });
  app.use("*", async (c, next) => {
    const password = machine.uiPassword();
    if (password === null) return next();
    const verdict = passwords.check(sourceOf(c), c.req.header("authorization"), password);
    if (verdict === "ok") return next();
    if (verdict === "throttled") return c.text("Too many wrong passwords from this address: wait a minute, then try again.", 429, { "retry-after": "60" });
    return c.text("The setup pages need the password (UNDERSTUDY_UI_PASSWORD on this machine).", 401, { "www-authenticate": 'Basic realm="understudy", charset="UTF-8"' });
  });
  app.use("*", csrf());

  app.onError((error, c) => {
    if (error instanceof AppError) {
      if (c.req.path.startsWith("/api/")) return c.json({ error: { code: error.code, message: error.message } }, error.status as 400);
      return c.text(error.message, error.status as 400);
    }
    if ("getResponse" in error && typeof error.getResponse === "function") return error.getResponse() as Response;
    console.error(error);
    return c.text("Something went wrong inside understudy; the log has the details.", 500);
  });

  app.get("/", (c) => c.redirect("/setup"));
  app.get("/setup", (c) => c.html(<SetupPage view={setupPageView()} />));
  app.get("/partials/status-bar", (c) => c.html(<StatusBar bar={statusBarView(machine.status())} />));
  app.get("/api/status", (c) => c.json(machine.status()));
  app.get("/api/machines/discovered", (c) => c.json(machine.discovered()));
  registerConsole(app, machine);
  app.route("/api/hub", hubApiRoutes((name, deliver) => machine.attachHubApp(name, deliver)));

  app.get("/static/:name", (c) => {
    const asset = assets.get(c.req.param("name"));
    if (!asset) return c.text("Not found", 404);
    return new Response(Bun.file(asset.path), { headers: { "content-type": asset.type, "cache-control": "no-cache" } });
  });

  /** Renders a section again: 200 with a note when saved, 400 with errors beside their fields. */
  const section = (c: Context, render: (errors: FieldErrors | undefined, saved: string | undefined) => HtmlEscapedString | Promise<HtmlEscapedString>) => ({
    saved: (message: string) => c.html(render(undefined, message)),
    failed: (errors: FieldErrors) => c.html(render(errors, undefined), 400),
  });
  const asFieldErrors = (error: unknown, fallbackField: string): FieldErrors => {
    if (error instanceof InvalidInput) return { [error.field ?? fallbackField]: error.message };
    if (error instanceof AppError) return { [fallbackField]: error.message };
    throw error;
  };

  app.post(
    "/setup/license",
    zValidator("form", licenseFormSchema, (result, c) => {
      if (!result.success) return section(c, (e) => <LicenseSection view={setupPageView()} errors={e} />).failed(fieldErrors(result.error as z.ZodError));
    }),
    async (c) => {
      const form = c.req.valid("form");
      const text = form.license?.trim() ? form.license : await form.licenseFile!.text();
      // A refused license stays in the box, to be corrected rather than pasted again.
      const out = section(c, (e, s) => <LicenseSection view={setupPageView()} errors={e} saved={s} typed={e ? form.license : undefined} />);
      try {
        machine.saveLicense(text);
      } catch (error) {
        return out.failed(asFieldErrors(error, "license"));
      }
      return out.saved("License saved.");
    },
  );

  app.post(
    "/setup/key",
    zValidator("form", keyFormSchema, (result, c) => {
      if (!result.success) return section(c, (e) => <KeySection view={setupPageView()} errors={e} />).failed(fieldErrors(result.error as z.ZodError));
    }),
    async (c) => {
      const form = c.req.valid("form");
      const out = section(c, (e, s) => <KeySection view={setupPageView()} errors={e} saved={s} />);
      const held = setupPageView().keyFingerprint ?? "";
      if (form.action === "generate" && held !== "" && form.replaces !== held) {
        return out.failed({ action: `This machine holds the network key ${held}, which this page did not show: reload the page, check, and confirm to replace it.` });
      }
      try {
        await machine.saveNetworkKey(form.action === "paste" ? form.key : null);
      } catch (error) {
        return out.failed(asFieldErrors(error, "key"));
      }
      return out.saved(form.action === "paste" ? "Network key saved." : "New network key generated and saved.");
    },
  );

  app.post(
    "/setup/role",
    zValidator("form", roleFormSchema, async (result, c) => {
      if (!result.success) {
        const values = Object.fromEntries(Object.entries(await c.req.parseBody()).filter(([, v]) => typeof v === "string")) as Record<string, string>;
        return section(c, (e) => <RoleSection view={setupPageView()} errors={e} values={values} />).failed(fieldErrors(result.error as z.ZodError));
      }
    }),
    async (c) => {
      const form = c.req.valid("form");
      const values = { role: form.role, main: form.main ?? "", backup: form.backup ?? "" };
      try {
        await machine.saveRole(form);
      } catch (error) {
        // Errors about anything but the form's own fields (the key, the license) are shown with the role choice.
        const errors = asFieldErrors(error, "role");
        const shown = Object.fromEntries(Object.entries(errors).map(([field, message]) => [field in values ? field : "role", message]));
        return c.html(<RoleSection view={setupPageView()} errors={shown} values={values} />, 400);
      }
      // A main (or a server) has a failback card; another role has none.
      return c.html(
        <>
          <RoleSection view={setupPageView()} saved="Saved and applied." />
          <FailbackSection view={setupPageView()} outOfBand />
        </>,
      );
    },
  );

  app.post(
    "/setup/failback",
    zValidator("form", failbackFormSchema, (result, c) => {
      if (!result.success) return section(c, (e) => <FailbackSection view={setupPageView()} errors={e} />).failed(fieldErrors(result.error as z.ZodError));
    }),
    (c) => {
      const out = section(c, (e, s) => <FailbackSection view={setupPageView()} errors={e} saved={s} />);
      try {
        machine.saveFailback(c.req.valid("form").failback);
      } catch (error) {
        return out.failed(asFieldErrors(error, "failback"));
      }
      return out.saved("Saved and applied.");
    },
  );

  return app;
}
