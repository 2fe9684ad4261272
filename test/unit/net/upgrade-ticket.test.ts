/**
 * Upgrade tickets (upgrade-ticket.ts): bound to the listener that gave the
 * challenge, to a short window, and to one use; a restart voids them all.
 */
import { expect, test } from "bun:test";
import nacl from "tweetnacl";
import { TICKET_HEADER, TICKET_WINDOW_MS, UpgradeTickets, upgradeHeaders } from "../../../src/net/upgrade-ticket.ts";

const networkKey = nacl.randomBytes(32);
const headers = (h: Record<string, string>) => new Headers(h);

function listener(id: string) {
  const clock = { t: 5 * TICKET_WINDOW_MS, now() {
    return this.t;
  } };
  return { tickets: new UpgradeTickets(networkKey, id, clock), clock };
}

test("a ticket opens one socket at the listener it was made for, once", () => {
  const { tickets } = listener("main");
  const ticket = headers(upgradeHeaders(networkKey, "/hub", tickets.challenge()));
  expect(tickets.check(ticket, "/hub")).toEqual({ ok: true });
  expect(tickets.check(ticket, "/hub")).toEqual({ ok: false, why: "replayed" });
  expect(tickets.check(headers(upgradeHeaders(networkKey, "/replicate", tickets.challenge())), "/hub")).toEqual({ ok: false, why: "no-proof" });
});

test("a ticket a client sent to the backup (or to another client) opens nothing at the main", () => {
  const main = listener("main").tickets;
  const backup = listener("backup").tickets;
  const toBackup = headers(upgradeHeaders(networkKey, "/hub", backup.challenge()));
  expect(main.check(toBackup, "/hub")).toEqual({ ok: false, why: "no-proof" });
  // Even with the main's own challenge in it, a ticket made for another machine id proves nothing here.
  const misdirected = headers(upgradeHeaders(networkKey, "/hub", { id: "backup", nonce: main.challenge().nonce }));
  expect(main.check(misdirected, "/hub")).toEqual({ ok: false, why: "no-proof" });
  expect(backup.check(toBackup, "/hub")).toEqual({ ok: true });
});

test("a ticket is taken in its window and the next, then it is stale", () => {
  const { tickets, clock } = listener("main");
  const early = upgradeHeaders(networkKey, "/hub", tickets.challenge());
  const late = upgradeHeaders(networkKey, "/hub", tickets.challenge());
  clock.t += TICKET_WINDOW_MS;
  expect(tickets.check(headers(early), "/hub")).toEqual({ ok: true });
  expect(tickets.challenge().nonce).not.toBe(early[TICKET_HEADER]!.slice(0, 32));
  clock.t += TICKET_WINDOW_MS;
  expect(tickets.check(headers(late), "/hub")).toEqual({ ok: false, why: "stale" });
});

test("after a restart no earlier ticket opens anything, used or not", () => {
  const before = listener("main").tickets;
  const unused = headers(upgradeHeaders(networkKey, "/hub", before.challenge()));
  const restarted = listener("main").tickets;
  expect(restarted.check(unused, "/hub")).toEqual({ ok: false, why: "stale" });
});

test("without the network key no ticket is made: a guess proves nothing", () => {
  const { tickets } = listener("main");
  const guess = headers(upgradeHeaders(nacl.randomBytes(32), "/hub", tickets.challenge()));
  guess.delete("x-understudy-network-key");
  expect(tickets.check(guess, "/hub")).toEqual({ ok: false, why: "no-proof" });
});
