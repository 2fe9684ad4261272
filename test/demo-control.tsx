/** @jsxImportSource hono/jsx */
/**
 * The demo's own page: "Stop main server" and "Start main server" buttons
 * beside the four machines' consoles, so a newcomer sees a failover and a
 * failback in the browser. Plain forms (POST, then back to the page).
 */
import { Hono } from "hono";
import { csrf } from "hono/csrf";
import { raw } from "hono/html";

export type DemoMachine = { name: string; role: string; ui: string; running: () => boolean };
export type DemoControls = { machines: DemoMachine[]; stopMain: () => Promise<void>; startMain: () => Promise<void> };

export function demoControl(demo: DemoControls): Hono {
  const app = new Hono();
  app.use("*", csrf());
  const main = () => demo.machines.find((m) => m.role === "main")!;
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
            <h1>understudy demo: four machines on this computer</h1>
            <p>
              The main server is <strong data-testid="main-state">{main().running() ? "running" : "stopped"}</strong>. Stop it and watch every console turn
              "Backup is active"; start it again and they return to "Backup is idle".
            </p>
            <form method="post" action="/main/stop" style="display:inline">
              <button class="stop" type="submit" disabled={!main().running()}>
                Stop main server
              </button>
            </form>
            <form method="post" action="/main/start" style="display:inline">
              <button class="start" type="submit" disabled={main().running()}>
                Start main server
              </button>
            </form>
            <div class="grid">
              {demo.machines.map((m) => (
                <div>
                  <a href={`${m.ui}/machines`} target="_blank">
                    {m.name} ({m.role})
                  </a>
                  <iframe src={`${m.ui}/machines`} title={`${m.name} console`}></iframe>
                </div>
              ))}
            </div>
          </body>
        </html>
      </>,
    ),
  );
  app.post("/main/stop", async (c) => {
    await demo.stopMain();
    return c.redirect("/", 303);
  });
  app.post("/main/start", async (c) => {
    await demo.startMain();
    return c.redirect("/", 303);
  });
  return app;
}
