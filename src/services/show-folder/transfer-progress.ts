/**
 * How far a push or pull has come, for whoever shows it: a bar on the
 * terminal for the command line (cli/progress-bar.ts), the Synced storage
 * panel for the node (folder-sync.ts).
 */
export interface TransferProgress {
  /** Bytes that were already there (a resume): progress, but not speed. */
  skip(bytes: number): void;
  /** Bytes moved in this run. */
  advance(bytes: number): void;
  finish(): void;
  /** The transfer failed; the error follows. */
  abandon(): void;
}

/** Makes the progress once the bytes to move are known; null for none. */
export type ProgressFor = (totalBytes: number) => TransferProgress | null;
