/**
 * Retained state is shared fairly (docs/design.md §Data Hub), with the real executable: one
 * machine's apps filling their machine's share are refused with the share named, while
 * another machine still writes, and overwriting what the full machine already holds still
 * works. Found: the hub was bounded by key count only, network-wide, so one app filled it
 * for every app on every machine (issue 21, finding 4).
 */
import { afterEach, expect, test } from "bun:test";
import { Cluster, DEFAULTS } from "../support/cluster.ts";

let cluster: Cluster | null = null;
afterEach(async () => {
  await cluster?.shutdown();
  cluster = null;
});

/** A value of about 60 KB: the machine's 32 MiB share holds a little over 500 of them. */
const BIG = "x".repeat(60_000);
/** Far more writes than one machine's share takes, so a missing bound cannot pass. */
const MAX_WRITES = 900;

async function put(ui: string, key: string, value: unknown): Promise<{ status: number; body: string }> {
  const response = await fetch(`${ui}/api/hub/state/${key}`, { method: "PUT", headers: { "content-type": "application/json" }, body: JSON.stringify(value) });
  return { status: response.status, body: await response.text() };
}

test(
  "one machine filling its share is refused, naming the share; another machine still writes, and the full one may overwrite",
  async () => {
    cluster = await Cluster.start(DEFAULTS);
    const c = cluster;
    await c.startClient("flooder");
    await c.startClient("neighbour");
    await c.waitAll("every client on the main's hub", (name, s) => name === "main" || name === "backup" || s.failover?.hubConnected === true, { timeoutMs: 30_000 });

    const flooder = c.machine("flooder").ui;
    let accepted = 0;
    let refusal: { status: number; body: string } | null = null;
    for (let i = 0; i < MAX_WRITES && refusal === null; i++) {
      const answer = await put(flooder, `flood/${i}`, BIG);
      if (answer.status === 200) accepted++;
      else refusal = answer;
    }
    expect(refusal).not.toBeNull();
    console.log(`[retained-shares] ${accepted} accepted, then ${refusal!.status}: ${refusal!.body}`);
    expect(refusal!.status).toBe(429);
    expect(refusal!.body).toContain("LIMIT_REACHED");
    expect(refusal!.body).toContain("one machine's share");
    expect(accepted).toBeGreaterThan(400);
    expect(accepted).toBeLessThan(MAX_WRITES);

    expect((await put(c.machine("neighbour").ui, "neighbour/scene", { take: 1 })).status).toBe(200);
    expect((await put(flooder, "flood/0", BIG.replace("x", "y"))).status).toBe(200);
    expect((await c.get("neighbour", "neighbour/scene")).value).toEqual({ take: 1 });
  },
  120_000,
);
