/** Files imported `with { type: "file" }` resolve to a path (embedded by bun build --compile). */
declare module "*.css" {
  const path: string;
  export default path;
}
declare module "htmx.org/dist/htmx.min.js" {
  const path: string;
  export default path;
}
declare module "htmx.org/dist/ext/hx-sse.js" {
  const path: string;
  export default path;
}
declare module "*/static/console.js" {
  const path: string;
  export default path;
}
/** Imported `with { type: "text" }`: tweetnacl's source, run in net/alive-presigner.ts's worker. */
declare module "tweetnacl/nacl-fast.min.js" {
  const source: string;
  export default source;
}
