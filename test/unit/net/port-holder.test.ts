import { expect, test } from "bun:test";
import { listenError } from "../../../src/net/listen-error.ts";
import { listeningInodes } from "../../../src/net/port-holder.ts";

const TCP = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1CE8 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 424242 1 0000000000000000 100 0 0 10 0
   1: 0100007F:1CE8 0100007F:D2F0 01 00000000:00000000 00:00000000 00000000  1000        0 515151 1 0000000000000000 20 4 30 10 -1
   2: 00000000:1CE9 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 434343 1 0000000000000000 100 0 0 10 0
`;
const TCP6 = `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:1CE8 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 454545 1 0000000000000000 100 0 0 10 0
`;

test("the listening sockets on a port, IPv4 and IPv6, not its connections", () => {
  expect([...listeningInodes([TCP, TCP6], 7400)].sort()).toEqual(["424242", "454545"]);
  expect([...listeningInodes([TCP], 7401)]).toEqual(["434343"]);
  expect([...listeningInodes([TCP, TCP6], 7402)]).toEqual([]);
});

test("a port in use names the process holding it, or asks when it is not known", () => {
  const inUse = Object.assign(new Error("in use"), { code: "EADDRINUSE" });
  expect(listenError(inUse, { host: "127.0.0.1", port: 7400 }, "--ui-listen", () => ({ pid: 4242, command: "understudy" })).message).toBe(
    "127.0.0.1:7400 (--ui-listen) is already in use by process 4242 (understudy). Stop it or choose another port with --ui-listen.",
  );
  expect(listenError(inUse, { host: "::1", port: 7400 }, "--ui-listen", () => null).message).toBe(
    "[::1]:7400 (--ui-listen) is already in use (is another understudy running?). Stop it or choose another port with --ui-listen.",
  );
});
