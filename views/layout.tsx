/** @jsxImportSource hono/jsx */
/** The page frame: head, the status bar every page shows, and the content. */
import type { Child } from "hono/jsx";
import { raw } from "hono/html";
import type { MachineStatus } from "../src/core/status.ts";
import { StatusBar } from "./status-bar.tsx";

export function Layout(props: { title: string; status: MachineStatus; children: Child }) {
  return (
    <>
      {raw("<!DOCTYPE html>")}
      <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>{`${props.title} · ${props.status.name} · understudy`}</title>
        <link rel="stylesheet" href="/static/style.css" />
        <script src="/static/htmx.min.js"></script>
      </head>
      <body>
        <StatusBar status={props.status} />
        <nav class="pages">
          <a href="/setup">Setup</a>
          <a href="/machines">Machines</a>
        </nav>
        <main>{props.children}</main>
      </body>
      </html>
    </>
  );
}
