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
