/**
 * A client's backup as its main said it (docs/design.md §Pairing): the main's
 * `/console` answer, authenticated by the handshake with the main's address,
 * names its paired backup or none. The client keeps it in memory and in its
 * data dir (a client restarted while the main is down still follows it) and
 * uses it when its setup names no backup (core/routing.ts clientBackup).
 */
import { parseHostPort, type HostPort } from "../core/config.ts";
import { clientBackup, type ClientBackup, type LearnedBackup as Learned } from "../core/routing.ts";
import { LearnedBackupFile, type LearnedBackupWord } from "../store/learned-backup-file.ts";
import { resolveHost } from "./resolve-host.ts";

export class LearnedBackup {
  private readonly file: LearnedBackupFile;
  private word: LearnedBackupWord | null;
  private learned: Learned<HostPort> | null = null;

  constructor(dataDir: string, private readonly changed: () => void) {
    this.file = new LearnedBackupFile(dataDir);
    this.word = this.file.read();
  }

  /** Resolves the kept address once, before the runtime first uses it. */
  async load(): Promise<void> {
    this.learned = await this.resolve(this.word).catch(() => null);
  }

  /** The backup to follow, given the one the setup names (which always wins). */
  backup(configured: HostPort | null): ClientBackup<HostPort> | null {
    return clientBackup(configured, this.learned);
  }

  /** What the main said now; a change is kept and applied (null: the main has no backup, forgotten). */
  async heard(word: LearnedBackupWord | null): Promise<void> {
    if (word?.address === this.word?.address && word?.machineId === this.word?.machineId) return;
    const learned = await this.resolve(word);
    this.word = word;
    this.learned = learned;
    this.file.write(word);
    this.changed();
  }

  private async resolve(word: LearnedBackupWord | null): Promise<Learned<HostPort> | null> {
    const parsed = word === null ? null : parseHostPort(word.address);
    const at = await resolveHost(parsed);
    return word === null || at === null ? null : { address: at, machineId: word.machineId };
  }
}
