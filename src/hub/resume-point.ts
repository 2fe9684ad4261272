/**
 * Where a node's uplink (hub-uplink.ts) left off at its server, so the server
 * it comes back to replays what it missed: the epoch it followed (from
 * `welcome`), that hub's stream and the last position received in it
 * (positions compare only within one stream), and how much could not be replayed.
 */
import type { FromHubFrameOf, ToHubFrameOf } from "./frames.ts";

export class ResumePoint {
  /** The epoch of the last server that welcomed this node; null before any did. */
  epoch: number | null = null;
  private stream: string | null = null;
  private pos = 0;
  /** Whether the current attach asked for a replay (then a new stream starts from 0, else from the welcome's position). */
  private resumed = false;
  private attachedBefore = false;
  /** How many times a server said it could not replay everything (a `gap`), and how many messages in all. */
  incompleteReplays = 0;
  messagesMissed = 0;

  /** The hello for a new attach; `resumeFromEpoch` set when a replay is asked for (then `resync` follows the subs). */
  hello(node: { id: string; name: string }): ToHubFrameOf<"hello"> {
    // Attached before but never welcomed (the server died first): 0 asks for everything the next one kept.
    const resumeFromEpoch = this.epoch ?? (this.attachedBefore ? 0 : undefined);
    this.attachedBefore = true;
    const hello: ToHubFrameOf<"hello"> = { type: "hello", id: node.id, name: node.name, kind: "node" };
    this.resumed = resumeFromEpoch !== undefined;
    if (resumeFromEpoch !== undefined) hello.resumeFromEpoch = resumeFromEpoch;
    if (this.stream !== null) {
      hello.resumeStream = this.stream;
      hello.resumeFromPos = this.pos;
    }
    return hello;
  }

  welcome(frame: FromHubFrameOf<"welcome">): void {
    this.epoch = frame.epoch;
    if (frame.stream !== undefined && frame.stream !== this.stream) {
      // A new stream: replayed messages start at its beginning; on a first attach, only what comes next is ours.
      this.stream = frame.stream;
      this.pos = this.resumed ? 0 : (frame.pos ?? 0);
    }
  }

  received(pos: number | undefined): void {
    if (pos !== undefined && pos > this.pos) this.pos = pos;
  }

  gap(missed: number): void {
    this.incompleteReplays++;
    this.messagesMissed += missed;
  }
}
