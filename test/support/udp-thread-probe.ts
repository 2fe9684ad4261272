/**
 * Compiled on its own by test/integration/worker-threads-compiled.test.ts: whether the heartbeat socket
 * runs on its own thread inside a compiled executable, where the thread's source (a Blob URL) must
 * come from the bundle, and sends heartbeats ahead from there. Prints "sent ahead from its thread",
 * else why not. Loopback only.
 */
import { HeartbeatSocket } from "../../src/net/heartbeat-socket.ts";
import { pretendClientHeartbeat } from "./heartbeat-recorder.ts";

const networkKey = new Uint8Array(32).fill(5);
const heard: number[] = [];
const sender = await HeartbeatSocket.bind({ host: "127.0.0.1", port: 0, networkKey, onHeartbeat: () => {} });
const receiver = await HeartbeatSocket.bind({ host: "127.0.0.1", port: 0, networkKey, onHeartbeat: (hb) => heard.push(hb.stamp.seq) });
const now = performance.now();
const beat = (seq: number) => pretendClientHeartbeat("00000000000000aa", "0011223344556677", seq, now, null);
sender.sendAhead([1, 2].map((seq) => ({ heartbeat: beat(seq), at: now + 20 * seq, notAfter: now + 10_000 })), { host: "127.0.0.1", port: receiver.port }, null);
const deadline = now + 10_000;
while (heard.length < 2 && performance.now() < deadline) await Bun.sleep(10);
const failure = sender.stats.threadFailure ?? receiver.stats.threadFailure;
console.log(failure ? `on the event loop: ${failure}` : heard.join(",") === "1,2" ? "sent ahead from its thread" : `heard ${JSON.stringify(heard)}`);
await Promise.all([sender.close(), receiver.close()]);
