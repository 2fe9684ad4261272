/**
 * A Videohub that speaks the Ethernet protocol on loopback (port 0), for the
 * driver's tests, the engine bench and the demo; never a real router. It
 * sends the state dump on connect, applies routes and locks (per client: O
 * ours, L another's), and can misbehave on cue: NAK everything, hold ACKs
 * until released (a slow ACK), ACK without confirming, never answer, drop
 * every connection, or send raw text (garbage, half blocks, a huge dump),
 * also in place of the dump on connect (`greeting`).
 */
import type { Socket, TCPSocketListener } from "bun";
import { RouterError } from "../../src/core/router.ts";

interface Client {
  id: number;
  socket: Socket<{ id: number }>;
  buffer: string;
}

export interface VideohubSimOptions {
  inputs?: number;
  outputs?: number;
  /** Older firmware ends its dump without `END PRELUDE:`. */
  endPrelude?: boolean;
  /** Loopback address to listen on: "127.0.0.1" (default) or "::1". */
  hostname?: string;
}

export class VideohubSim {
  readonly inputs: number;
  readonly outputs: number;
  readonly routes: number[];
  /** Lock owner per destination: a client id, "other" (a client not connected here), or null. */
  readonly lockOwners: (number | "other" | null)[];
  nak = false;
  silent = false;
  confirm = true;
  holdAcks = false;
  /** Sent on connect instead of the state dump (garbage, a half block, a huge dump); then closed if `closeAfterGreeting`. */
  greeting: string | null = null;
  closeAfterGreeting = false;
  /** Called after the router applies a route (the bench's stopwatch). */
  onRoute: ((destination: number, source: number) => void) | null = null;
  /** Route requests seen, in order ("dest source"). */
  readonly requests: string[] = [];
  readonly #clients = new Map<number, Client>();
  readonly #held: (() => void)[] = [];
  readonly #endPrelude: boolean;
  readonly #hostname: string;
  #listener: TCPSocketListener<{ id: number }> | null = null;
  #nextId = 1;
  #connections = 0;

  constructor(options: VideohubSimOptions = {}) {
    this.inputs = options.inputs ?? 12;
    this.outputs = options.outputs ?? 12;
    this.#endPrelude = options.endPrelude ?? true;
    this.#hostname = options.hostname ?? "127.0.0.1";
    this.routes = Array.from({ length: this.outputs }, (_, i) => i % this.inputs);
    this.lockOwners = Array.from({ length: this.outputs }, () => null);
  }

  get port(): number {
    if (!this.#listener) throw new Error("VideohubSim not started");
    return this.#listener.port;
  }

  /** Connections accepted so far (a reconnect adds one). */
  get connections(): number {
    return this.#connections;
  }

  get clientCount(): number {
    return this.#clients.size;
  }

  start(): this {
    this.#listener = Bun.listen<{ id: number }>({
      hostname: this.#hostname,
      port: 0,
      socket: {
        open: (socket) => {
          const id = this.#nextId++;
          socket.data = { id };
          this.#connections++;
          const client = { id, socket, buffer: "" };
          this.#clients.set(id, client);
          if (this.greeting !== null) {
            socket.write(this.greeting);
            if (this.closeAfterGreeting) socket.end();
          } else if (!this.silent) socket.write(this.dump(id));
        },
        data: (socket, bytes) => {
          const client = this.#clients.get(socket.data.id);
          if (client) this.#receive(client, new TextDecoder().decode(bytes));
        },
        close: (socket) => {
          this.#clients.delete(socket.data.id);
        },
      },
    });
    return this;
  }

  stop(): void {
    for (const c of this.#clients.values()) c.socket.end();
    this.#listener?.stop(true);
    this.#listener = null;
  }

  /** The full state dump as client `id` sees it. */
  dump(id: number): string {
    const device = `VIDEOHUB DEVICE:\nDevice present: true\nModel name: Understudy Sim Videohub\nVideo inputs: ${this.inputs}\nVideo processing units: 0\nVideo outputs: ${this.outputs}\nVideo monitoring outputs: 0\nSerial ports: 0\n\n`;
    const inputLabels = `INPUT LABELS:\n${Array.from({ length: this.inputs }, (_, i) => `${i} Input ${i + 1}`).join("\n")}\n\n`;
    const outputLabels = `OUTPUT LABELS:\n${Array.from({ length: this.outputs }, (_, i) => `${i} Output ${i + 1}`).join("\n")}\n\n`;
    return (
      "PROTOCOL PREAMBLE:\nVersion: 2.8\n\n" +
      device +
      inputLabels +
      outputLabels +
      this.#locksBlock(id, [...this.routes.keys()]) +
      `VIDEO OUTPUT ROUTING:\n${this.routes.map((s, d) => `${d} ${s}`).join("\n")}\n\n` +
      (this.#endPrelude ? "END PRELUDE:\n\n" : "")
    );
  }

  /** Another client (not connected here) takes the lock on `destination`. */
  lockByOther(destination: number): void {
    this.lockOwners[destination] = "other";
    this.#broadcastLocks([destination]);
  }

  /** Another client routes `source` to `destination` (every client hears it). */
  routeByOther(destination: number, source: number): void {
    this.routes[destination] = source;
    this.#broadcast(() => `VIDEO OUTPUT ROUTING:\n${destination} ${source}\n\n`);
  }

  /** Sends ACKs held while `holdAcks` was true, with the status that follows each. */
  releaseAcks(): void {
    for (const send of this.#held.splice(0)) send();
  }

  /** Drops every connection (the router rebooting, a cable pulled). */
  dropAll(): void {
    for (const c of this.#clients.values()) c.socket.end();
  }

  /** Writes `text` as-is to every client. */
  sendRaw(text: string): void {
    for (const c of this.#clients.values()) c.socket.write(text);
  }

  #receive(client: Client, text: string): void {
    client.buffer += text;
    let end: number;
    while ((end = client.buffer.indexOf("\n\n")) >= 0) {
      const block = client.buffer.slice(0, end).split("\n");
      client.buffer = client.buffer.slice(end + 2);
      if (!this.silent) this.#request(client, block[0] ?? "", block.slice(1));
    }
  }

  #request(client: Client, header: string, lines: string[]): void {
    const answer = (ok: boolean, after?: () => void) => {
      const send = () => {
        client.socket.write(ok ? "ACK\n\n" : "NAK\n\n");
        if (ok && this.confirm) after?.();
      };
      if (this.holdAcks) this.#held.push(send);
      else send();
    };
    if (header === "PING:") return answer(true);
    if (header === "VIDEO OUTPUT ROUTING:") {
      const changes = lines.map((l) => l.split(" ").map(Number) as [number, number]);
      this.requests.push(...lines);
      const bad = changes.some(([d, s]) => !(d >= 0 && d < this.outputs && s >= 0 && s < this.inputs) || this.#lockedFor(client.id, d));
      if (this.nak || bad) return answer(false);
      return answer(true, () => {
        for (const [d, s] of changes) {
          this.routes[d] = s;
          this.onRoute?.(d, s);
        }
        this.#broadcast(() => `VIDEO OUTPUT ROUTING:\n${changes.map(([d, s]) => `${d} ${s}`).join("\n")}\n\n`);
      });
    }
    if (header === "VIDEO OUTPUT LOCKS:") {
      const changes = lines.map((l) => l.split(" ") as [string, string]);
      if (this.nak) return answer(false);
      return answer(true, () => {
        for (const [d, l] of changes) {
          const dest = Number(d);
          const owner = this.lockOwners[dest];
          if (l === "O" && (owner === null || owner === client.id)) this.lockOwners[dest] = client.id;
          if (l === "U" && owner === client.id) this.lockOwners[dest] = null;
          if (l === "F") this.lockOwners[dest] = null;
        }
        this.#broadcastLocks(changes.map(([d]) => Number(d)));
      });
    }
    answer(false);
  }

  #lockedFor(id: number, destination: number): boolean {
    const owner = this.lockOwners[destination];
    return owner !== null && owner !== id;
  }

  #locksBlock(id: number, destinations: number[]): string {
    const letter = (d: number) => (this.lockOwners[d] === null ? "U" : this.lockOwners[d] === id ? "O" : "L");
    return `VIDEO OUTPUT LOCKS:\n${destinations.map((d) => `${d} ${letter(d)}`).join("\n")}\n\n`;
  }

  #broadcastLocks(destinations: number[]): void {
    this.#broadcast((id) => this.#locksBlock(id, destinations));
  }

  #broadcast(text: (id: number) => string): void {
    for (const c of this.#clients.values()) c.socket.write(text(c.id));
  }
}

/** The RouterError a router call ends in (anything else, or none, fails the test). */
export async function routerRefusal(promise: Promise<unknown>): Promise<RouterError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof RouterError) return error;
    throw error;
  }
  throw new Error("expected a RouterError");
}
