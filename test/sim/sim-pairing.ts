/**
 * Pairing in the simulator, with the objects a server runs (docs/design.md
 * §Pairing): each server's production PairingService on `/pair` of its
 * in-memory peer port, and its Partnership with the main's PairingKeeper,
 * on the machine's timers. The operator's Add Backup and Remove Backup are
 * the Partnership's own; the runner's pairAgain effect reaches the keeper as
 * peer-runtime.ts wires it. What the simulator keeps of pairing.json is the
 * core's record on the world's disk (what the checker reads) plus, beside
 * it, the partner's name, address and machine key (store/pairing-file.ts's
 * other fields), both surviving a crash.
 *
 * Left out, as on the wire they cost nothing the core sees: heartbeat keys
 * (the world seals by name), DNS (addresses are names already), and
 * `changed` (the world's servers always name the other server, and
 * sim-hub.ts restarts the copy on a new pairing itself).
 */
import nacl from "tweetnacl";
import { formatHostPort, type HostPort } from "../../src/core/config.ts";
import type { PairingRecord } from "../../src/core/failover/index.ts";
import { signLicense, type LicenseDocument } from "../../src/core/license.ts";
import { licenseProofRefusal, type PairingRefusal } from "../../src/core/pairing-rules.ts";
import type { Logger } from "../../src/log.ts";
import { Partnership } from "../../src/machine/partnership.ts";
import type { PairingStore } from "../../src/machine/runner-ports.ts";
import { PairingService, type PairedPeer } from "../../src/services/pairing-service.ts";
import type { PairingDetails, PairingFile } from "../../src/store/pairing-file.ts";
import { machineTimers, settlingDialer, settlingService } from "./machine-io.ts";
import type { Rng } from "./prng.ts";
import type { SimHub } from "./sim-hub.ts";
import type { SimNode, World } from "./world.ts";

/** The vendor key the simulated licenses are signed with (a fixed seed: every seed's run is the same). */
const VENDOR = nacl.sign.keyPair.fromSeed(new Uint8Array(32).fill(7));
let license: LicenseDocument | null = null;

/** One server-with-failover license for any holder, signed once per process (signing is slow, verifying is what pairing does). */
function serverLicense(): LicenseDocument {
  return (license ??= signLicense({ type: "server-with-failover", holder: "*", issuedAt: "2026-01-01T00:00:00.000Z", expiresAt: null }, VENDOR.secretKey));
}

/**
 * The production license check, remembered per (side, document, holder): verifying a signature costs
 * milliseconds, and thousands of seeds pair again and again. The simulated licenses never expire, so
 * the time of the check changes nothing.
 */
const judged = new Map<string, PairingRefusal | null>();
const checkLicense: typeof licenseProofRefusal = (who, sent, vendorKey, holder, now) => {
  const key = JSON.stringify([who, sent, holder]);
  let refusal = judged.get(key);
  if (refusal === undefined) judged.set(key, (refusal = licenseProofRefusal(who, sent, vendorKey, holder, now)));
  return refusal;
};

/** The peer port a main states in its pair frame: the twin listens at port 0, which the frame's schema refuses. */
const STATED_PORT = 7401;

/** A machine's public key, the same across its restarts (a real machine keeps its key pair in its data dir). */
export function simMachineKey(name: string): Uint8Array {
  const key = new Uint8Array(32);
  key.set(new TextEncoder().encode(name).subarray(0, 32));
  return key;
}

function keyText(key: Uint8Array): string {
  return Buffer.from(key).toString("base64");
}

type About = Pick<PairingDetails, "peerId" | "peerName" | "address" | "peerLicense" | "peerKey">;
type Expected = Parameters<PairingFile["expect"]>[0];

/** pairing.json on the simulated disk: the core's record where the checker reads it, and what the exchange learned beside it. */
class PairingDisk implements PairingStore, Pick<PairingFile, "details" | "expect" | "rememberKey"> {
  #next: Expected | null = null;

  constructor(
    private readonly n: SimNode,
    private readonly about: Map<string, About>,
  ) {}

  read(): PairingRecord | null {
    return this.n.disk.pairing;
  }

  write(pairing: PairingRecord | null): void {
    this.n.disk.pairing = pairing;
    const next = this.#next;
    if (pairing !== null && next?.peerId === pairing.peerId) this.about.set(this.n.name, { ...next, peerKey: keyText(next.peerKey) });
  }

  details(): PairingDetails | null {
    const p = this.n.disk.pairing;
    if (p === null) return null;
    const about = this.about.get(this.n.name);
    const known = about?.peerId === p.peerId ? about : null;
    return { ...p, peerName: known?.peerName ?? "", address: known?.address ?? "", peerLicense: known?.peerLicense ?? null, peerKey: known?.peerKey ?? null };
  }

  expect(peer: Expected): void {
    this.#next = peer;
  }

  rememberKey(peerId: string, peerKey: Uint8Array): void {
    const known = this.details();
    if (known === null || known.peerId !== peerId) return;
    this.about.set(this.n.name, { ...known, peerKey: keyText(peerKey) });
  }
}

/** What the world asks of the pairing machinery (world.ts wires it where a machine starts and where the operator acts). */
export interface PairingMachinery {
  /** The runner's pairing store for this incarnation (before the runner is built). */
  store(n: SimNode): PairingStore;
  /** The incarnation's runner exists: its pairing service and partnership start. */
  started(n: SimNode): void;
  /** The core's pairAgain effect. */
  pairAgain(n: SimNode): void;
  /** The operator's Add Backup on the main; `lagMs`: the main records its side that much later (a loaded main). */
  addBackup(lagMs?: number): void;
  /** The operator's Remove Backup on the main. */
  removeBackup(): void;
}

export class SimPairing implements PairingMachinery {
  /** Each server's pairing.json beyond the core's record: it survives crashes. */
  readonly #about = new Map<string, About>();
  readonly #disks = new Map<string, PairingDisk>();
  readonly #partners = new Map<string, Partnership>();
  /** The main's setup names the backup (its Add Backup saved it, or it started so): survives restarts, as config.json does. */
  #wanted: HostPort | null;
  /** The next Add Backup's lag on the main's side. */
  #lagMs = 0;
  /** An Add Backup the operator clicked has not answered yet: a main that dies meanwhile shows it failed, and the operator clicks again. */
  #adding = false;
  /** Removals so far: an add clicked before the last one is not clicked again. */
  #removals = 0;

  constructor(
    readonly world: World,
    readonly hub: SimHub,
    readonly rng: Rng,
    /** The main starts with the backup named in its setup (every family but new-backup). */
    wanted: boolean,
  ) {
    this.#wanted = wanted ? world.endpointOf("backup") : null;
  }

  store(n: SimNode): PairingStore {
    const disk = new PairingDisk(n, this.#about);
    this.#disks.set(n.name, disk);
    // A run that starts paired: the exchange happened before it, and pairing.json says with whom.
    const p = n.disk.pairing;
    if (p !== null && this.#about.get(n.name)?.peerId !== p.peerId) {
      this.#about.set(n.name, { peerId: p.peerId, peerName: p.peerId, address: formatHostPort(this.world.endpointOf(p.peerId)), peerLicense: "server-with-failover", peerKey: keyText(simMachineKey(p.peerId)) });
    }
    return disk;
  }

  started(n: SimNode): void {
    const w = this.world;
    const peer = this.hub.peerOf(n);
    const disk = this.#disks.get(n.name);
    if (n.role === "client" || !peer || !disk) return;
    const inc = n.inc;
    const live = () => n.inc === inc && n.state !== null;
    const timers = machineTimers(w, n);
    const log = this.#logger(n);
    const mainAddress = () => n.runner?.serverAddress("main") ?? null;
    let partner: Partnership | null = null;
    const service = new PairingService(
      {
        name: () => n.name,
        role: () => n.role,
        licenseDocument: serverLicense,
        vendorPublicKey: () => VENDOR.publicKey,
        now: () => Date.parse("2026-06-01T00:00:00Z") + w.now(),
        peerPort: () => STATED_PORT,
        expectedMain: mainAddress,
        pairedWith: () => n.disk.pairing?.peerId ?? null,
        pairedKey: () => disk.details()?.peerKey ?? null,
        acceptMain: (p) => partner?.adopt(p, ((at) => (at ? formatHostPort(at) : p.address))(mainAddress())),
        dropMain: () => partner?.drop(),
      },
      settlingDialer(w, peer),
      log,
      { timers, checkLicense },
    );
    partner = new Partnership({
      role: n.role,
      pairingFile: disk,
      heartbeatKeys: { pin() {} },
      exchange: { pair: (at) => service.pair(at).then((p) => this.#late(n, p)), unpair: (at) => service.unpair(at) },
      feed: (event) => {
        if (live()) w.feed(n, event);
      },
      changed: () => {},
      wantedBackup: () => this.#wanted,
      setWantedBackup: (at) => void (this.#wanted = at),
      log,
      timers,
      clock: w.clock,
      random: () => this.rng.next(),
      resolve: async (at) => at,
    });
    this.#partners.set(n.name, partner);
    peer.serve(settlingService(w, { path: "/pair", accept: (c) => service.accept(c) }));
    if (n.role === "main") partner.keep();
    if (n.role === "main" && this.#adding) w.at(w.now() + w.cfg.timings.failoverTimeoutMs, "Add Backup again: the main died while adding it", () => this.addBackup());
  }

  pairAgain(n: SimNode): void {
    this.#partners.get(n.name)?.pairAgain();
  }

  addBackup(lagMs = 0): void {
    const w = this.world;
    const main = w.node("main");
    const partner = this.#partners.get("main");
    // Tried again without the lag: the slow answer was the first one's.
    const again = () => w.at(w.now() + w.cfg.timings.failoverTimeoutMs, "Add Backup, tried again", () => this.addBackup());
    // The operator's page answers only while the main runs; the operator tries again.
    if (!main.state || main.frozen || !partner) return void again();
    if (w.backupAdds === "removed") w.backupAdds = "added-again";
    this.#lagMs = lagMs;
    const [inc, removals] = [main.inc, this.#removals];
    this.#adding = true;
    w.log(`ADD BACKUP on the main${lagMs > 0 ? ` (the main records its side ${lagMs} ms late)` : ""}`);
    partner.addBackup(formatHostPort(w.endpointOf("backup"))).then(
      (added) => {
        if (main.inc !== inc) return;
        this.#adding = false;
        w.log(`the main added the backup ${added.peerName}`);
      },
      (error: Error) => {
        // A main that died meanwhile answers nothing (started() clicks again once it is back).
        if (main.inc !== inc) return;
        w.log(`ADD BACKUP refused: ${error.message}`);
        if (this.#removals !== removals) return; // removed since: the operator's last word
        // Until it goes through (a refusal is in plain words on the page; the operator fixes the network and tries again).
        if (main.disk.pairing === null) again();
        else this.#adding = false;
      },
    );
    w.longChainSettled = true;
  }

  removeBackup(): void {
    const w = this.world;
    const main = w.node("main");
    const partner = this.#partners.get("main");
    if (!main.state || main.frozen || !partner) return w.log("REMOVE BACKUP: the main's page does not answer");
    w.log("REMOVE BACKUP on the main");
    w.backupAdds = "removed";
    this.#removals += 1;
    this.#adding = false;
    partner.removeBackup().then(
      () => w.log("the main removed the backup"),
      (error: Error) => w.log(`REMOVE BACKUP failed: ${error.message}`),
    );
    w.longChainSettled = true;
  }

  /** The main's answer to the operator's add, `#lagMs` late once (a loaded main records its side after the backup's grace). */
  #late(n: SimNode, peer: PairedPeer): Promise<PairedPeer> {
    const lag = this.#lagMs;
    this.#lagMs = 0;
    if (lag <= 0 || n.role !== "main") return Promise.resolve(peer);
    return new Promise((resolve) => machineTimers(this.world, n).after(lag, () => resolve(peer)));
  }

  #logger(n: SimNode): Logger {
    const w = this.world;
    const line = (event: string, fields?: object) => {
      if (w.trace) w.log(`${n.name} log: ${event}${fields ? ` ${JSON.stringify(fields)}` : ""}`);
    };
    return { info: line, warn: line, error: line };
  }
}
