/**
 * An eavesdropper's recording of a server's heartbeats, for replay tests. It
 * poses as a client: it sends the server client heartbeats it crafts with the
 * network key, and keeps every sealed datagram the server answers with, byte
 * for byte, as a capture off the wire would hold them. `replay` sends one of
 * them again, later, to any machine.
 *
 *   const rec = await HeartbeatRecorder.open(networkKey);
 *   await rec.record({ host: "127.0.0.1", port: mainPort }, 1_000);
 *   rec.replay(rec.datagrams.at(-1)!, { host: "127.0.0.1", port: backupPort });
 *   rec.close();
 */
import nacl from "tweetnacl";
import type { HostPort } from "../../src/core/config.ts";
import { HeartbeatCodec, type Heartbeat } from "../../src/net/heartbeat.ts";

/** How often the pretend client beats, and the most datagrams kept (a recording is bounded). */
const BEAT_EVERY_MS = 50;
const MAX_DATAGRAMS = 10_000;

/**
 * The one place that knows the heartbeat's shape: a client heartbeat from the
 * pretend client (`id`, this process's `boot`), its `seq`-th since it started,
 * echoing the server's last stamp so the server counts it as a live client.
 * When the heartbeat schema changes, change this function only.
 */
export function pretendClientHeartbeat(id: string, boot: string, seq: number, now: number, echo: Heartbeat["echo"]): Heartbeat {
  return {
    id,
    role: "client",
    state: "follow-main",
    epoch: 0,
    activeEpoch: null,
    stamp: { boot, seq, sentAt: now },
    echo,
    echoHeldMs: null,
    challenge: false,
    showFileRevision: 0,
    msSinceHeardMain: null,
    msSinceHeardBackup: null,
    condition: null,
    syncProgress: null,
    pairedWith: null,
    lanes: null,
    hubCopied: null,
    name: "eavesdropper",
  };
}

export class HeartbeatRecorder {
  /** Every datagram received, in arrival order, exactly as it came. */
  readonly datagrams: Uint8Array[] = [];
  private readonly id = Buffer.from(nacl.randomBytes(8)).toString("hex");
  private readonly bootId = Buffer.from(nacl.randomBytes(8)).toString("hex");
  private seq = 0;

  private constructor(
    private readonly socket: Bun.udp.Socket<"uint8array">,
    private readonly codec: HeartbeatCodec,
  ) {}

  /** A UDP socket on loopback, port chosen by the OS. */
  static async open(networkKey: Uint8Array): Promise<HeartbeatRecorder> {
    let self: HeartbeatRecorder | undefined;
    const socket = await Bun.udpSocket({
      hostname: "127.0.0.1",
      port: 0,
      binaryType: "uint8array",
      socket: {
        data: (_socket, data) => {
          if (self && self.datagrams.length < MAX_DATAGRAMS) self.datagrams.push(new Uint8Array(data));
        },
        // A send to a closed port comes back as an error on the socket; without a handler Bun ends the process.
        error: () => {},
      },
    });
    self = new HeartbeatRecorder(socket, new HeartbeatCodec(networkKey));
    return self;
  }

  /** Beats at `server` for `durationMs`, recording what comes back. */
  async record(server: HostPort, durationMs: number): Promise<void> {
    const until = performance.now() + durationMs;
    while (performance.now() < until) {
      const last = this.datagrams.at(-1);
      const echo = last ? (this.open(last)?.stamp ?? null) : null;
      this.send(this.codec.encode(pretendClientHeartbeat(this.id, this.bootId, ++this.seq, performance.now(), echo)), server);
      await Bun.sleep(BEAT_EVERY_MS);
    }
  }

  /** Sends a recorded datagram again, unchanged. */
  replay(datagram: Uint8Array, to: HostPort): void {
    this.send(datagram, to);
  }

  /** What a recorded datagram says (for failure messages; the test replays the bytes, never this). */
  open(datagram: Uint8Array): Heartbeat | null {
    try {
      return this.codec.decode(datagram, "recording");
    } catch {
      return null;
    }
  }

  close(): void {
    this.socket.close();
  }

  private send(datagram: Uint8Array, to: HostPort): void {
    // Linux reports an earlier send's ICMP refusal on the next send: try once more.
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        this.socket.send(datagram, to.port, to.host);
        return;
      } catch {
        // the refusal of an earlier send; the next attempt goes out
      }
    }
  }
}
