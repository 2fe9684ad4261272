/**
 * Files served under /static. Imported `with { type: "file" }`, so
 * `bun build --compile` embeds them and they are served byte-identical from
 * the executable, with no node_modules beside it.
 */
import htmxPath from "htmx.org/dist/htmx.min.js" with { type: "file" };
import ssePath from "htmx.org/dist/ext/hx-sse.js" with { type: "file" };
import cssPath from "../../static/style.css" with { type: "file" };
import consolePath from "../../static/console.js" with { type: "file" };

export type StaticAsset = { path: string; type: string };

export function staticAssets(): Map<string, StaticAsset> {
  const js = "text/javascript; charset=utf-8";
  return new Map([
    ["htmx.min.js", { path: htmxPath, type: js }],
    ["hx-sse.js", { path: ssePath, type: js }],
    ["console.js", { path: consolePath, type: js }],
    ["style.css", { path: cssPath, type: "text/css; charset=utf-8" }],
  ]);
}
