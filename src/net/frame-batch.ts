/**
 * Hub frames are small (100-200 bytes) and many; a WebSocket write and a seal
 * per frame cost far more than the frame. So frames for one connection are
 * gathered while the event loop works through what arrived, and sent as one
 * sealed message when it is done (setImmediate), or sooner past `maxBytes`:
 * JSON texts joined by "\n" (JSON.stringify never emits a raw newline, so the
 * split is exact). Order on the connection is kept: whoever sends anything
 * else on it (a broadcast) calls `flush()` first.
 */
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A batch is sent once it holds this much, even before the loop is done. */
export const DEFAULT_BATCH_BYTES = 32 * 1024;

/** Runs `run` once the event loop is done with what arrived; returns its cancel. A simulator passes its own turn. */
export type Defer = (run: () => void) => () => void;

/** The runtime's end of the turn (setImmediate). */
export const nextTurn: Defer = (run) => {
  const handle = setImmediate(run);
  return () => clearImmediate(handle);
};

export class FrameBatcher {
  private texts: string[] = [];
  private size = 0;
  private scheduled: (() => void) | null = null;

  constructor(
    private readonly write: (payload: Uint8Array) => void,
    private readonly maxBytes = DEFAULT_BATCH_BYTES,
    private readonly defer: Defer = nextTurn,
  ) {}

  push(text: string): void {
    this.texts.push(text);
    this.size += text.length + 1;
    if (this.size >= this.maxBytes) this.flush();
    else this.scheduled ??= this.defer(() => this.flush());
  }

  /** Sends what is gathered now, as one message. */
  flush(): void {
    this.scheduled?.();
    this.scheduled = null;
    if (this.texts.length === 0) return;
    const payload = encoder.encode(this.texts.length === 1 ? this.texts[0]! : this.texts.join("\n"));
    this.texts = [];
    this.size = 0;
    this.write(payload);
  }

  /** Drops what is gathered (the connection is gone). */
  clear(): void {
    this.scheduled?.();
    this.scheduled = null;
    this.texts = [];
    this.size = 0;
  }
}

/** The frames in one received message (one, or a batch). */
export function splitFrames(payload: Uint8Array): string[] {
  const text = decoder.decode(payload);
  return text.includes("\n") ? text.split("\n") : [text];
}
