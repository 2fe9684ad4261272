/** @jsxImportSource hono/jsx */
/**
 * The page frame: the status bar every page shows, the panels' navigation,
 * and the live stream (/events, htmx's SSE extension) that keeps the bar and
 * the page's live parts current without polling. Without JavaScript every
 * page and form still works; it just does not update itself.
 */
import type { Child } from "hono/jsx";
import { raw } from "hono/html";
import type { StatusBarView } from "../view-models/status-bar-view.ts";
import { StatusBar } from "./status-bar.tsx";

export const PANELS = ["status", "machines", "delays", "routing", "storage", "backup-groups", "health", "setup"] as const;
export type Panel = (typeof PANELS)[number];

const NAV: { panel: Panel; label: string }[] = [
  { panel: "status", label: "Status" },
  { panel: "machines", label: "Machines" },
  { panel: "delays", label: "Delays" },
  { panel: "routing", label: "Routing" },
  { panel: "storage", label: "Synced storage" },
  { panel: "backup-groups", label: "Backup groups" },
  { panel: "health", label: "Health" },
  { panel: "setup", label: "Setup" },
];

export function Layout(props: { title: string; bar: StatusBarView; panel: Panel; children: Child }) {
  return (
    <>
      {raw("<!DOCTYPE html>")}
      <html lang="en">
        <head>
          <meta charset="utf-8" />
          <meta name="viewport" content="width=device-width, initial-scale=1" />
          <title>{`${props.title} · ${props.bar.name} · understudy`}</title>
          <link rel="stylesheet" href="/static/style.css" />
          <script src="/static/htmx.min.js"></script>
          <script src="/static/hx-sse.js"></script>
          <script src="/static/console.js"></script>
        </head>
        <body>
          <StatusBar bar={props.bar} />
          <div class="contact-lost" role="alert" data-testid="contact-lost">
            Lost contact with {props.bar.name}: this page no longer shows what the machine is doing. Trying again…
          </div>
          <nav class="pages" aria-label="Panels">
            {NAV.map((n) => (
              <a href={`/${n.panel}`} aria-current={n.panel === props.panel ? "page" : undefined}>
                {n.label}
              </a>
            ))}
          </nav>
          <main>{props.children}</main>
          <div id="live" hidden hx-sse:connect={`/events?panel=${props.panel}`} hx-swap="none"></div>
        </body>
      </html>
    </>
  );
}
