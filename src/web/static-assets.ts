/**
 * Files served under /static. Imported `with { type: "file" }`, so
 * `bun build --compile` embeds them and they are served byte-identical from
 * the executable, with no node_modules beside it.
 */
import htmxPath from "htmx.org/dist/htmx.min.js" with { type: "file" };
import cssPath from "../../static/style.css" with { type: "file" };

export type StaticAsset = { path: string; type: string };

export function staticAssets(): Map<string, StaticAsset> {
  return new Map([
    ["htmx.min.js", { path: htmxPath, type: "text/javascript; charset=utf-8" }],
    ["style.css", { path: cssPath, type: "text/css; charset=utf-8" }],
  ]);
}
