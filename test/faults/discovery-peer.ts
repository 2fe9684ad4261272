/**
 * A stand-in machine for the discovery fault test: runs one Discovery and
 * serves its list over HTTP inside its network namespace. (The real
 * executable's /api/machines/discovered will replace it.)
 *
 *   bun test/faults/discovery-peer.ts --name X --role main --fingerprint F \
 *       --port N --interface IF --http PORT [--id HEX] [--epoch N] [--license T]
 *       [--forget-after-ms MS]
 *
 *   GET  /machines  JSON of list()
 *   GET  /status    JSON of status()
 *   POST /self      JSON {role?, epoch?, name?, license?, version?, fingerprint?} → update()
 *
 * SIGTERM/SIGINT: stop() (goodbye packets), then exit 0.
 */
import { parseArgs } from "node:util";
import { z } from "zod";
import { fingerprint } from "../../src/core/keys.ts";
import { createLogger } from "../../src/log.ts";
import { Discovery } from "../../src/net/discovery/discovery.ts";
import { machineAdvertSchema } from "../../src/net/discovery/txt.ts";

const { values } = parseArgs({
  args: Bun.argv.slice(2),
  options: {
    name: { type: "string" },
    id: { type: "string" },
    role: { type: "string", default: "client" },
    license: { type: "string", default: "server-with-failover" },
    version: { type: "string", default: "0.0.0-test" },
    fingerprint: { type: "string" },
    epoch: { type: "string", default: "0" },
    port: { type: "string", default: "7401" },
    interface: { type: "string" },
    http: { type: "string" },
    "forget-after-ms": { type: "string" },
  },
  strict: true,
});

const flags = z
  .object({
    name: z.string().min(1),
    id: z.string().optional(),
    role: z.string(),
    license: z.string(),
    version: z.string(),
    fingerprint: z.string(),
    epoch: z.coerce.number().int().nonnegative(),
    port: z.coerce.number().int().min(1).max(65535),
    interface: z.string().optional(),
    http: z.coerce.number().int().min(1).max(65535),
    "forget-after-ms": z.coerce.number().int().positive().optional(),
  })
  .parse(values);

const log = createLogger(() => "json");
const discovery = new Discovery({
  self: machineAdvertSchema.parse({
    // A stable made-up machine id per name, unless given.
    id: flags.id ?? fingerprint(new TextEncoder().encode(`machine:${flags.name}`)),
    name: flags.name,
    role: flags.role,
    license: flags.license,
    version: flags.version,
    fingerprint: flags.fingerprint,
    epoch: flags.epoch,
  }),
  port: flags.port,
  interface: flags.interface,
  forgetAfterMs: flags["forget-after-ms"],
  log,
});

const updateSchema = machineAdvertSchema.omit({ id: true }).partial().strict();

const server = Bun.serve({
  hostname: "0.0.0.0",
  port: flags.http,
  async fetch(request) {
    const path = new URL(request.url).pathname;
    if (request.method === "GET" && path === "/machines") return Response.json(discovery.list());
    if (request.method === "GET" && path === "/status") return Response.json(discovery.status());
    if (request.method === "POST" && path === "/self") {
      const body = updateSchema.safeParse(await request.json().catch(() => null));
      if (!body.success) return Response.json({ error: z.prettifyError(body.error) }, { status: 400 });
      discovery.update(body.data);
      return new Response(null, { status: 204 });
    }
    return new Response("not found\n", { status: 404 });
  },
});

discovery.start();
log.info("peer.ready", { name: flags.name, http: server.port });

let stopping = false;
async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  log.info("peer.stopping", { signal });
  await discovery.stop();
  await server.stop(true);
  log.info("peer.stopped", {});
  process.exit(0);
}
process.on("SIGTERM", () => void shutdown("SIGTERM"));
process.on("SIGINT", () => void shutdown("SIGINT"));
