/**
 * In-memory plumbing for hub tests: a HubCore with sinks per connection
 * (what an adapter does), direct app connections, and buffered wires between
 * a client node's HubUplink and a hub, which can be cut to model a server dying.
 * Frames crossing a wire are JSON text, as on the real channel.
 */
import { encodeFrame, type FromHubFrame, type ToHubFrame } from "../../../src/hub/frames.ts";
import { HubCore, type Fanout, type HubCoreOptions } from "../../../src/hub/hub-core.ts";
import { HubUplink } from "../../../src/hub/hub-uplink.ts";
import type { HubUplinkOptions } from "../../../src/hub/uplink-options.ts";

export class FakeHubServer {
  readonly hub: HubCore;
  readonly fanouts: Fanout[] = [];
  private readonly sinks = new Map<string, (frame: FromHubFrame) => void>();

  constructor(options: HubCoreOptions = {}) {
    this.hub = new HubCore(options);
  }

  attach(id: string, sink: (frame: FromHubFrame) => void): void {
    this.sinks.set(id, sink);
    this.hub.attach(id, sink);
  }

  receive(id: string, input: unknown): void {
    this.dispatch(this.hub.receive(id, input));
  }

  detach(id: string): void {
    this.sinks.delete(id);
    this.dispatch(this.hub.detach(id));
  }

  /** What the adapter does: one frame, written to each listed connection. */
  dispatch(fanouts: Fanout[]): void {
    for (const fanout of fanouts) {
      this.fanouts.push(fanout);
      for (const id of fanout.to) this.sinks.get(id)?.(fanout.frame);
    }
  }
}

/** An app (or script) connected straight to a hub, recording what it receives. */
export class DirectConnection {
  readonly frames: FromHubFrame[] = [];
  constructor(
    readonly server: FakeHubServer,
    readonly id: string,
    hello: { id?: string; name?: string; kind?: "app" | "node" } | null = {},
  ) {
    server.attach(id, (frame) => this.frames.push(frame));
    if (hello) this.send({ type: "hello", id: hello.id ?? id, name: hello.name ?? id, kind: hello.kind ?? "app" });
  }

  send(frame: ToHubFrame | unknown): void {
    this.server.receive(this.id, frame);
  }

  of<T extends FromHubFrame["type"]>(type: T): Extract<FromHubFrame, { type: T }>[] {
    return this.frames.filter((f): f is Extract<FromHubFrame, { type: T }> => f.type === type);
  }

  last(): FromHubFrame | undefined {
    return this.frames.at(-1);
  }

  clear(): void {
    this.frames.length = 0;
  }

  close(): void {
    this.server.detach(this.id);
  }
}

/** A client node: a HubUplink and the frames each of its local apps received. */
export class FakeNode {
  readonly uplink: HubUplink;
  readonly received = new Map<string, FromHubFrame[]>();
  readonly deliveries: { frame: FromHubFrame; apps: readonly string[] }[] = [];

  constructor(id: string, options: Partial<HubUplinkOptions> = {}) {
    this.uplink = new HubUplink({
      node: { id, name: id },
      deliver: (frame, apps) => {
        this.deliveries.push({ frame, apps });
        for (const app of apps) {
          const list = this.received.get(app) ?? [];
          list.push(frame);
          this.received.set(app, list);
        }
      },
      ...options,
    });
  }

  app(app: string, frame: ToHubFrame | unknown) {
    return this.uplink.fromApp(app, frame);
  }

  framesOf(app: string): FromHubFrame[] {
    return this.received.get(app) ?? [];
  }

  of<T extends FromHubFrame["type"]>(app: string, type: T): Extract<FromHubFrame, { type: T }>[] {
    return this.framesOf(app).filter((f): f is Extract<FromHubFrame, { type: T }> => f.type === type);
  }
}

let wireCount = 0;

/** A node's connection to a hub, buffered both ways so tests decide what arrives before a cut. */
export class Wire {
  readonly connectionId = `wire-${++wireCount}`;
  private up: string[] = [];
  private down: string[] = [];
  private open = true;

  constructor(
    readonly node: FakeNode,
    readonly server: FakeHubServer,
  ) {
    server.attach(this.connectionId, (frame) => {
      if (this.open) this.down.push(encodeFrame(frame));
    });
    node.uplink.attachServer((frame) => {
      if (this.open) this.up.push(encodeFrame(frame));
    });
  }

  /** Hands what the node sent to the hub (acks and deliveries wait in the other direction); `count` frames at most. */
  pumpUp(count = Infinity): void {
    for (let i = 0; i < count && this.up.length > 0; i++) this.server.receive(this.connectionId, this.up.shift()!);
  }

  pumpDown(count = Infinity): void {
    for (let i = 0; i < count && this.down.length > 0; i++) this.node.uplink.onFrameFromServer(this.down.shift()!);
  }

  /** The frames the node sent that the hub has not received yet (parsed), e.g. to check what a reconnect sends. */
  pendingUp(): ToHubFrame[] {
    return this.up.map((text) => JSON.parse(text) as ToHubFrame);
  }

  get idle(): boolean {
    return this.up.length === 0 && this.down.length === 0;
  }

  /** The connection breaks: what is in flight either way is lost; both ends notice. */
  cut(): void {
    this.open = false;
    this.up = [];
    this.down = [];
    this.server.detach(this.connectionId);
    this.node.uplink.detachServer();
  }
}

/** Pumps every wire until nothing is in flight. */
export function settle(...wires: Wire[]): void {
  for (let round = 0; round < 1000; round++) {
    if (wires.every((w) => w.idle)) return;
    for (const wire of wires) {
      wire.pumpUp();
      wire.pumpDown();
    }
  }
  throw new Error("wires did not settle");
}
