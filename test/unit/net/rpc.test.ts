import { afterEach, expect, test } from "bun:test";
import nacl from "tweetnacl";
import { z } from "zod";
import { AppError } from "../../../src/core/errors.ts";
import { RpcClient, rpcServer } from "../../../src/net/rpc.ts";
import { connectSecure } from "../../../src/net/secure-socket.ts";
import { serveBarePeer } from "../../support/peer-identity.ts";

const networkKey = nacl.randomBytes(32);
const servers: ReturnType<typeof Bun.serve>[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.stop(true);
});

/** The code a call failed with. */
async function failure(call: Promise<unknown>): Promise<string> {
  const error = await call.then(
    () => null,
    (e: unknown) => e,
  );
  return error instanceof AppError ? error.code : "NO_ERROR";
}

async function pair() {
  const options = { networkKey, machine: nacl.sign.keyPair() };
  const server = serveBarePeer(
    options,
    (connection) =>
      rpcServer(connection, {
        add: (params) => {
          const { a, b } = z.object({ a: z.number(), b: z.number() }).parse(params);
          return a + b;
        },
        refuse: () => {
          throw new AppError("READ_ONLY", "The main server is down: file changes can't be pushed or pulled until it is back", { status: 409 });
        },
        slow: () => Bun.sleep(200).then(() => "late"),
      }),
    { path: "/files" },
  );
  servers.push(server);
  const client = new RpcClient();
  client.attach(await connectSecure(`127.0.0.1:${server.port}`, "/files", { networkKey, machine: nacl.sign.keyPair() }, () => client.events()));
  return client;
}

test("a call gets its result, checked against the schema", async () => {
  const client = await pair();
  expect(await client.call("add", { a: 2, b: 3 }, z.number())).toBe(5);
  await expect(client.call("add", { a: 2, b: 3 }, z.string())).rejects.toThrow("in a shape this version does not understand");
});

test("a refusal comes back with its code and message", async () => {
  const client = await pair();
  const error = (await client.call("refuse", {}, z.unknown()).catch((e: unknown) => e)) as AppError;
  expect(error.code).toBe("READ_ONLY");
  expect(error.status).toBe(409);
  expect(error.message).toContain("can't be pushed or pulled");
  expect(await failure(client.call("nope", {}, z.unknown()))).toBe("UNKNOWN_METHOD");
});

test("no answer in time is a timeout, and a closed connection fails waiting calls", async () => {
  const client = await pair();
  expect(await failure(client.call("slow", {}, z.unknown(), 50))).toBe("TIMEOUT");
  const waiting = client.call("slow", {}, z.unknown());
  client.close();
  expect(await failure(waiting)).toBe("CONNECTION_LOST");
});
