/**
 * A plain TCP text connection for line protocols spoken by studio devices
 * (a Videohub's port 9990): the one place that calls `Bun.connect` for them.
 * Text is UTF-8; a partial write is queued until the socket drains.
 */

export interface TextConnection {
  write(text: string): void;
  /** Ends the connection; `closed` follows. Calling it twice is harmless. */
  close(): void;
}

export interface TextConnectionHandlers {
  data(text: string): void;
  /** Exactly once, when the connection ends for any reason. */
  closed(error?: Error): void;
}

/** Opens a connection; rejects when the peer cannot be reached. */
export type TextDialer = (host: string, port: number, handlers: TextConnectionHandlers) => Promise<TextConnection>;

export const tcpTextDialer: TextDialer = async (host, port, handlers) => {
  const decoder = new TextDecoder();
  const encoder = new TextEncoder();
  let queued = new Uint8Array(0);
  let ended = false;
  const end = (error?: Error) => {
    if (ended) return;
    ended = true;
    handlers.closed(error);
  };
  const socket = await Bun.connect({
    hostname: host.startsWith("[") ? host.slice(1, -1) : host,
    port,
    socket: {
      data(_s, bytes) {
        handlers.data(decoder.decode(bytes, { stream: true }));
      },
      drain(s) {
        if (queued.length === 0) return;
        const written = s.write(queued);
        queued = queued.subarray(Math.max(0, written));
      },
      close() {
        end();
      },
      error(_s, error) {
        end(error);
      },
    },
  });
  return {
    write(text) {
      if (ended) return;
      const bytes = encoder.encode(text);
      if (queued.length > 0) {
        const joined = new Uint8Array(queued.length + bytes.length);
        joined.set(queued);
        joined.set(bytes, queued.length);
        queued = joined;
        return;
      }
      const written = socket.write(bytes);
      if (written < bytes.length) queued = bytes.subarray(Math.max(0, written));
    },
    close() {
      socket.end();
    },
  };
};
