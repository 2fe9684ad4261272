/**
 * The publisher of the hub bench's paced phase (hub.ts), in a process of its own: publishing,
 * receiving and timing in one event loop measured the bench (it sent in clumps and read late),
 * not the broker. Every TICK_MS it sends the messages due by then at the rate, each stamped
 * with the wall clock when it is sent (wallNow: the subscriber in the bench process reads the
 * same clock). It also counts how many it sent more than 1 ms and 5 ms after they were due,
 * the bench's own lag, to tell it apart from the broker's (Bun's 1 ms timer fires every ≈ 1.1 ms,
 * so ≈ 10 % of sends are 1.0-1.1 ms late by the tick alone; past 5 ms the process was held). On stdin / stdout with the bench:
 *   - connected, it publishes a warm-up message (seq 0) every WARM_EVERY_MS until the line "go";
 *   - then sends `count` messages and prints one JSON line (PacedResult);
 *   - closes and exits at the line "end" (or the end of stdin).
 *   bun test/bench/paced-publisher.ts '{"via":{...},"run":"bench/r7","rate":10000,"count":50000,"limitMs":120000}'
 */
import { readFileSync } from "node:fs";
import { parseNetworkKey } from "../../src/core/keys.ts";
import { mqttTransport, sealedTransport, wallNow, WINDOW, type Publisher, type PublishVia } from "./hub-transports.ts";

export type PacedConfig = { via: PublishVia; run: string; rate: number; count: number; limitMs: number };
/** Messages sent more than 1 ms and 5 ms after they were due; `worstLateMs`: the most any was. */
export type PacedResult = { sent: number; lateOver1Ms: number; lateOver5Ms: number; worstLateMs: number; ms: number };

const TICK_MS = 1;
const WARM_EVERY_MS = 100;
const WARM_LIMIT_MS = 15_000;
const PAD = "p".repeat(100);

const config = JSON.parse(process.argv[2]!) as PacedConfig;

function connect(via: PublishVia): Promise<Publisher> {
  if (via.kind === "mqtt") return mqttTransport(`MQTT on port ${via.port}`, via.port, via.port).publisher();
  const key = parseNetworkKey(readFileSync(via.keyFile, "utf8"), via.keyFile);
  return sealedTransport(key, via.keyFile, via.address, via.address).publisher();
}

const stdinLines = (async function* () {
  for await (const line of console) yield line.trim();
})();
async function nextLine(): Promise<string> {
  const next = await stdinLines.next();
  return next.done ? "end" : next.value;
}

function paced(pub: Publisher): Promise<PacedResult> {
  const start = performance.now();
  const dueAt = (seq: number) => start + ((seq - 1) * 1000) / config.rate;
  let seq = 0;
  let pending = 0;
  let lateOver1Ms = 0;
  let lateOver5Ms = 0;
  let worstLateMs = 0;
  return new Promise((resolve) => {
    const tick = setInterval(() => {
      const elapsed = performance.now() - start;
      const due = Math.min(config.count, Math.floor((elapsed * config.rate) / 1000) + 1);
      // At most WINDOW sends waiting for room: past that the broker is behind, and what is due waits here (counted late).
      while (seq < due && pending < WINDOW && !pub.lost?.()) {
        seq++;
        const lateMs = performance.now() - dueAt(seq);
        if (lateMs > 1) lateOver1Ms++;
        if (lateMs > 5) lateOver5Ms++;
        worstLateMs = Math.max(worstLateMs, lateMs);
        const sending = pub.send(`${config.run}/x`, { seq, t: wallNow(), pad: PAD });
        if (sending) {
          pending++;
          void sending.then(() => pending--);
        }
      }
      if (seq >= config.count || elapsed > config.limitMs || pub.lost?.()) {
        clearInterval(tick);
        resolve({ sent: seq, lateOver1Ms, lateOver5Ms, worstLateMs, ms: performance.now() - start });
      }
    }, TICK_MS);
  });
}

const pub = await connect(config.via);
let going = false;
const go = nextLine().then(() => {
  going = true;
});
const warmUntil = performance.now() + WARM_LIMIT_MS;
while (!going && performance.now() < warmUntil) {
  await pub.send(`${config.run}/warm`, { seq: 0, t: 0, pad: "" });
  await Promise.race([go, Bun.sleep(WARM_EVERY_MS)]);
}
if (going) {
  console.log(JSON.stringify(await paced(pub)));
  await nextLine();
} else console.error(`bench hub: paced publisher on ${config.run}: no "go" within ${WARM_LIMIT_MS} ms`);
pub.close();
process.exit(0);
