/**
 * Families about the machine's setup rather than the network's faults
 * (run.ts picks them; schedules.ts has the fault families):
 *
 *  ipv6          chaos, with every machine on an IPv6 address.
 *  resave-storm  blips, and every machine's settings saved again unchanged
 *                every few milliseconds, at any moment: no effect (I15), no
 *                failover (I7).
 *  network-key   a new network key is saved on the machines one by one, in
 *                any order, some not until faults stop (the fix); the backup
 *                may restart right after (so it dials the main again).
 *                Machines on different keys cannot open peer-port
 *                connections (heartbeats are sealed with pair keys and still
 *                flow). Must cause no failover, and the Data Hub delivers once
 *                all share the key.
 *  readd-backup  the backup removed on the main and added again (readdBackup).
 *  move-main     the main restarted at a new address, and each machine's
 *                setup changed to it one by one (the backup first or last):
 *                the backup heartbeats to and copies from the address its
 *                setup names now, every client's hub link follows its setup.
 */
import type { Rng } from "./prng.ts";
import type { SimHub } from "./sim-hub.ts";
import { CLIENTS, type Window } from "./schedules.ts";
import { ROGUE, type World } from "./world.ts";

const ALL = ["main", "backup", ...CLIENTS, "c4"] as const;

/** IPv6 addresses for every machine, the rogue's too (set before the first spawn). */
export function ipv6Addresses(world: World): void {
  const at: Record<string, string> = { main: "fd00::a", backup: "fd00:0:0:1::b", c1: "fd00::c1", c2: "fd00::c2", c3: "2001:db8::c3", c4: "fd00::c4", [ROGUE]: "fd00::bad" };
  for (const [name, address] of Object.entries(at)) world.addresses.set(name, address);
}

export function resaveStorm(world: World, rng: Rng, w: Window): void {
  const { heartbeatMs: h } = world.cfg.timings;
  for (let t = w.from + rng.int(0, h); t < w.stopAt; t += rng.int(1, h)) {
    const who = rng.pick(ALL.filter((n) => n !== "c4"));
    world.at(t, `resave ${who}`, () => world.resave(who));
  }
}

export function networkKey(world: World, hub: SimHub, rng: Rng, w: Window): void {
  const order = [...ALL.filter((n) => n !== "c4")].sort(() => rng.next() - 0.5);
  const span = w.stopAt - w.from;
  for (const who of order) {
    // Most get the new key during the run; some only when the operator notices (faults stop).
    const at = rng.chance(0.75) ? w.from + rng.int(0, span - 1) : w.stopAt;
    world.at(at, `new network key on ${who}`, () => hub.setKey(who, 2));
    // Restarted to be sure it applies: its hub link is dialled again, under the new key.
    if (who === "backup" && at < w.stopAt && rng.chance(0.7)) {
      const back = Math.min(at + rng.int(1, world.cfg.timings.heartbeatMs), w.stopAt - 1);
      world.at(back, `${who} restarts with the new key`, () => {
        world.crash(who);
        world.restart(who);
      });
    }
  }
}

/**
 * readd-backup: the operator removes the backup on the main and adds it again
 * (once or twice), and now and then the main dies after the new pairing: the
 * backup must copy again and take over (the "syncing 0 % for good").
 * Now and then the backup is down when it is removed, and comes back (the main running) before it is added again.
 */
export function readdBackup(world: World, rng: Rng, w: Window): void {
  const { failoverTimeoutMs: T } = world.cfg.timings;
  const add = (label: string) => {
    const m = world.node("main");
    const up = !world.linkState("main", "backup").cut && !world.linkState("backup", "main").cut && !!world.node("backup").state;
    // The operator tries again until the exchange goes through (the add answers in plain words when it fails).
    if (!m.state || !up) return world.at(world.now() + T, `${label}, tried again`, () => add(label));
    world.pair();
  };
  let t = w.from + rng.int(0, T);
  for (let round = 0; round < 2 && t < w.stopAt - 4 * T; round++) {
    // Now and then the backup is down when it is removed: it never hears the unpair message, and
    // comes back holding its pairing. The main must tell it (I22), before anyone adds it again. Only
    // in the first round, while the main has not crashed yet: a removed backup that comes back while
    // the main is down takes over, as nobody can tell it (docs/design.md §Pairing).
    const downAtRemoval = round === 0 && rng.chance(0.5);
    if (downAtRemoval) world.at(t - 1, "crash backup", () => world.crash("backup"));
    world.at(t, "remove the backup", () => world.removeBackup());
    const upAt = t + rng.int(T / 4, 2 * T);
    if (downAtRemoval) world.at(upAt, "restart the removed backup", () => world.restart("backup"));
    const addAt = (downAtRemoval ? upAt + T : t) + rng.int(T / 2, 3 * T);
    world.at(addAt, "add the backup again", () => add("add the backup again"));
    if (rng.chance(0.5)) {
      const crashAt = addAt + rng.int(0, 3 * T);
      world.at(crashAt, "crash main", () => !world.faultsStopped && world.crash("main"));
      if (rng.chance(0.5)) world.at(crashAt + rng.int(T, 3 * T), "restart main", () => !world.faultsStopped && world.restart("main"));
    }
    t = addAt + rng.int(2 * T, 4 * T);
  }
}

/** Where move-main puts the main (every machine starts at its own name as its address). */
export const MOVED_MAIN = "main-moved";

/**
 * move-main: the operator moves the main to a new address (stopped, restarted there; now and then
 * crashed again soon after), then saves the new address on the backup's and the clients' setup
 * pages, in any order, all before faults stop. Until a machine's setup names it, that machine
 * does not reach the main (the old address is gone).
 */
export function moveMain(world: World, rng: Rng, w: Window): void {
  const { failoverTimeoutMs: T } = world.cfg.timings;
  for (const name of ALL) world.addresses.set(name, name);
  const moveAt = w.from + rng.int(0, 2 * T);
  world.at(moveAt, `move the main to ${MOVED_MAIN}`, () => {
    world.crash("main");
    world.addresses.set("main", MOVED_MAIN);
  });
  const backAt = moveAt + rng.int(1, 2 * T);
  world.at(backAt, "restart main at its new address", () => world.restart("main"));
  if (rng.chance(0.3)) {
    const crashAt = backAt + rng.int(T, 3 * T);
    world.at(crashAt, "crash main", () => world.crash("main"));
    world.at(crashAt + rng.int(T / 2, 2 * T), "restart main", () => world.restart("main"));
  }
  for (const who of ["backup", ...CLIENTS]) {
    const at = moveAt + rng.int(0, Math.max(1, w.stopAt - moveAt - 1));
    world.at(at, `the new main address saved on ${who}`, () => {
      const n = world.node(who);
      world.setServers(who, { main: true, backup: n.knows.backup });
    });
  }
}
