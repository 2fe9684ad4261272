/** @jsxImportSource hono/jsx */
/**
 * The demo's own page: "Stop main server" / "Start main server" and "Stop
 * render-1" / "Start render-1" beside the machines' consoles, and the
 * simulated router's routes, so a newcomer sees a server failover and a
 * render-engine failover in the browser. Plain forms (POST, then back to the page).
 */
import { Hono } from "hono";
import { csrf } from "hono/csrf";
import { raw } from "hono/html";

/** A console shown on the page: `page` is the panel (default "/machines"). */
export type DemoMachine = { name: string; role: string; ui: string; running: () => boolean; page?: string };
/** A machine the page can stop (kill -9) and start again, by name. */
export type DemoSwitch = { name: string; label: string; stop: () => Promise<void>; start: () => Promise<void> };
export type DemoControls = {
  machines: DemoMachine[];
  switches: DemoSwitch[];
  /** The simulated router's routes as lines ("Destination 5 ← source 1 (render-1)"); none without a router. */
  router?: () => string[];
};

export function demoControl(demo: DemoControls): Hono {
  const app = new Hono();
  app.use("*", csrf());
  const running = (name: string) => demo.machines.find((m) => m.name === name)?.running() ?? false;
  app.get("/", (c) =>
    c.html(
      <>
        {raw("<!DOCTYPE html>")}
        <html lang="en">
          <head>
            <meta charset="utf-8" />
            <title>understudy demo</title>
            <style>{`body{font-family:system-ui,sans-serif;background:#11151a;color:#e6e9ee;margin:1rem 2rem}
button{font:inherit;font-weight:700;padding:.6rem 1.4rem;margin-right:1rem;border-radius:.3rem;border:0;cursor:pointer}
.stop{background:#d93a2b;color:#fff}.start{background:#1f9d55;color:#fff}
.grid{display:grid;grid-template-columns:1fr 1fr;gap:1rem;margin-top:1rem}iframe{width:100%;height:420px;border:1px solid #2c343f;background:#11151a}a{color:#4c9aff}`}</style>
          </head>
          <body>
            <h1>understudy demo: the machines of a studio on this computer</h1>
            <p>
              Stop the main server and watch every console turn "Backup is active"; start it again and they return to "Backup is idle". Stop render-1
              and the main server switches the router's destination to render-spare's source (its Health panel and status chip say so); start it
              again and render-1 returns after the hold time.
            </p>
            {demo.switches.map((sw) => (
              <p>
                {sw.label} is <strong data-testid={`${sw.name}-state`}>{running(sw.name) ? "running" : "stopped"}</strong>:{" "}
                <form method="post" action={`/${sw.name}/stop`} style="display:inline">
                  <button class="stop" type="submit" disabled={!running(sw.name)}>
                    Stop {sw.label}
                  </button>
                </form>
                <form method="post" action={`/${sw.name}/start`} style="display:inline">
                  <button class="start" type="submit" disabled={running(sw.name)}>
                    Start {sw.label}
                  </button>
                </form>
              </p>
            ))}
            {demo.router ? (
              <section data-testid="router">
                <h2>Simulated Videohub</h2>
                {demo.router().map((line) => (
                  <div>{line}</div>
                ))}
              </section>
            ) : null}
            <div class="grid">
              {demo.machines.map((m) => (
                <div>
                  <a href={`${m.ui}${m.page ?? "/machines"}`} target="_blank">
                    {m.name} ({m.role})
                  </a>
                  <iframe src={`${m.ui}${m.page ?? "/machines"}`} title={`${m.name} console`}></iframe>
                </div>
              ))}
            </div>
          </body>
        </html>
      </>,
    ),
  );
  for (const sw of demo.switches) {
    app.post(`/${sw.name}/stop`, async (c) => {
      await sw.stop();
      return c.redirect("/", 303);
    });
    app.post(`/${sw.name}/start`, async (c) => {
      await sw.start();
      return c.redirect("/", 303);
    });
  }
  return app;
}
