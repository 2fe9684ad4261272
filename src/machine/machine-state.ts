/**
 * What a machine is right now: its settings, identity, license and network key,
 * loaded from the data dir and checked together. Changing it (the setup pages)
 * validates everything first and writes nothing when anything is wrong.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { hostname } from "node:os";
import nacl from "tweetnacl";
import {
  configFromEnv,
  configFromFlags,
  defaultConfig,
  resolveConfig,
  type Config,
  type ConfigFile,
  type ConfigKey,
} from "../core/config.ts";
import { InvalidInput } from "../core/errors.ts";
import { fingerprint, formatNetworkKey, parseNetworkKey } from "../core/keys.ts";
import { readLicense, type LicenseDocument } from "../core/license.ts";
import { checkRole } from "../core/roles.ts";
import { writeFileAtomic } from "../store/atomic-file.ts";
import { ConfigFileStore } from "../store/config-store.ts";
import { loadOrCreateMachineIdentity, type MachineIdentity } from "../store/machine-identity.ts";

export type MachineInputs = {
  dataDir: string;
  flags: Partial<Record<ConfigKey, string>>;
  env: Record<string, string | undefined>;
  vendorPublicKey: Uint8Array;
  now: () => number;
};

export type MachineSnapshot = {
  config: Config;
  identity: MachineIdentity;
  license: LicenseDocument | null;
  networkKey: Uint8Array | null;
  /** Settings fixed by a flag or the environment: the setup pages show them read-only. */
  pinned: ReadonlySet<ConfigKey>;
};

export class MachineState {
  readonly dataDir: string;
  private readonly inputs: MachineInputs;
  /** The vendor key licenses are checked with (the pairing exchange checks the other server's). */
  get vendorPublicKey(): Uint8Array {
    return this.inputs.vendorPublicKey;
  }
  private readonly fileStore: ConfigFileStore;
  private readonly flagLayer: ConfigFile;
  private readonly envLayer: ConfigFile;
  private current: MachineSnapshot;

  /** Loads and checks everything; throws an AppError naming the flag, variable, file or field at fault. */
  constructor(inputs: MachineInputs) {
    this.inputs = inputs;
    this.dataDir = inputs.dataDir;
    this.flagLayer = configFromFlags(inputs.flags);
    this.envLayer = configFromEnv(inputs.env);
    this.fileStore = new ConfigFileStore(inputs.dataDir);
    const identity = loadOrCreateMachineIdentity(inputs.dataDir);
    this.current = this.load(this.fileStore.read(), identity);
  }

  get snapshot(): MachineSnapshot {
    return this.current;
  }

  licensePath(config: Config = this.current.config): string {
    return config.license ?? join(this.dataDir, "license.json");
  }

  keyPath(config: Config = this.current.config): string {
    return config.key ?? join(this.dataDir, "network.key");
  }

  /** Checks a pasted license; saves it and applies it when valid. Returns the new snapshot. */
  saveLicense(text: string): MachineSnapshot {
    this.refuseIfPinned("license", "--license");
    const license = readLicense(text.trim(), this.inputs.vendorPublicKey, "The pasted license");
    const next = this.check({ ...this.current, license });
    writeFileAtomic(this.licensePath(), `${JSON.stringify(license, null, 2)}\n`, 0o600);
    return (this.current = next);
  }

  /** Saves a network key (pasted, or null to generate one). */
  saveNetworkKey(text: string | null): MachineSnapshot {
    this.refuseIfPinned("key", "--key");
    const key = text === null ? nacl.randomBytes(32) : parseNetworkKey(text, "The pasted network key");
    const next = this.check({ ...this.current, networkKey: key });
    writeFileAtomic(this.keyPath(), formatNetworkKey(key), 0o600);
    return (this.current = next);
  }

  /** Applies setting changes from the setup pages: all checked first, then written to config.json. */
  saveSettings(changes: ConfigFile): MachineSnapshot {
    for (const key of Object.keys(changes) as ConfigKey[]) {
      if (changes[key] !== undefined && this.current.pinned.has(key) && changes[key] !== this.current.config[key]) {
        throw new InvalidInput(`This setting is fixed by the command line or environment; change it there and restart.`, key);
      }
    }
    const unpinned = Object.fromEntries(Object.entries(changes).filter(([key]) => !this.current.pinned.has(key as ConfigKey)));
    const next = this.load({ ...this.fileStore.read(), ...unpinned }, this.current.identity);
    this.fileStore.update(unpinned);
    return (this.current = next);
  }

  private refuseIfPinned(key: ConfigKey, flag: string): void {
    if (this.current.pinned.has(key)) {
      throw new InvalidInput(`This machine was started with ${flag}, so this is fixed; change the file it names instead.`, key);
    }
  }

  private load(fileLayer: ConfigFile, identity: MachineIdentity): MachineSnapshot {
    const config = resolveConfig(defaultConfig(hostname()), this.flagLayer, this.envLayer, fileLayer);
    const pinned = new Set([...Object.keys(this.flagLayer), ...Object.keys(this.envLayer)] as ConfigKey[]);
    return this.check({ config, identity, license: this.readLicenseFile(config), networkKey: this.readKeyFile(config), pinned });
  }

  /**
   * The license must allow the role; the network key may come later, in any order
   * (docs/design.md §Roles and licenses): the machine then waits for it and says so.
   */
  private check(snapshot: MachineSnapshot): MachineSnapshot {
    const { config, license } = snapshot;
    checkRole(config.role, license, config.name, this.inputs.now());
    return snapshot;
  }

  private readLicenseFile(config: Config): LicenseDocument | null {
    const path = this.licensePath(config);
    if (!existsSync(path)) {
      if (config.license !== null) throw new InvalidInput(`The license file ${path} does not exist.`, "license");
      return null;
    }
    return readLicense(readFileSync(path, "utf8"), this.inputs.vendorPublicKey, `The license file ${path}`);
  }

  private readKeyFile(config: Config): Uint8Array | null {
    const path = this.keyPath(config);
    if (!existsSync(path)) {
      if (config.key !== null) throw new InvalidInput(`The network key file ${path} does not exist.`, "key");
      return null;
    }
    return parseNetworkKey(readFileSync(path, "utf8"), `The network key file ${path}`);
  }
}

export function networkKeyFingerprint(snapshot: MachineSnapshot): string | null {
  return snapshot.networkKey === null ? null : fingerprint(snapshot.networkKey);
}
