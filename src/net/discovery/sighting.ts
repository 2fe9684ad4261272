/**
 * A resolved DNS-SD service, as dnssd's Browser reports it, turned into a
 * `Sighting` of an understudy machine, or refused with a reason. Pure.
 *
 * Everything in it came off the network: the instance name, the port, the
 * addresses and the TXT record are all checked here before the rest of the
 * program sees them.
 */
import { isIP } from "node:net";
import { z } from "zod";
import { parseTxt, type MachineAdvert, type ParseResult } from "./txt.ts";

/** What one service instance told us about a machine. */
export interface Sighting {
  /** The DNS-SD instance's full name ("Render 1._understudy._tcp.local."): the key dnssd reports it down by. */
  service: string;
  advert: MachineAdvert;
  /** Where its peer port listens: the one address it names (TXT `at`), else what dnssd resolved, IPv4 first, each address once. */
  addresses: string[];
  port: number;
}

/** A machine on several links (or a hostile record) could list many; the UI needs a few. */
export const MAX_ADDRESSES = 8;
/** A DNS name is at most 255 bytes on the wire; a few more for escaping. */
const MAX_SERVICE_NAME_CHARS = 300;

const serviceSchema = z.object({
  fullname: z.string().min(1).max(MAX_SERVICE_NAME_CHARS),
  port: z.int().min(1).max(65535),
  addresses: z.array(z.unknown()).max(64),
  txtRaw: z.unknown(),
});

/** Reads a dnssd service object. Never throws. */
export function parseSighting(service: unknown): ParseResult<Sighting> {
  const shape = serviceSchema.safeParse(service);
  if (!shape.success) {
    const fields = [...new Set(shape.error.issues.map((i) => i.path.map(String).join(".") || "service"))].join(", ");
    return { ok: false, reason: `malformed service record (${fields})` };
  }
  const advert = parseTxt(shape.data.txtRaw);
  if (!advert.ok) return advert;
  // A machine whose peer port listens on one address answers only there, whatever interfaces dnssd announced.
  const addresses = advert.value.at !== undefined ? [advert.value.at] : usableAddresses(shape.data.addresses);
  if (addresses.length === 0) return { ok: false, reason: "service has no usable IP address" };
  return { ok: true, value: { service: shape.data.fullname, advert: advert.value, addresses, port: shape.data.port } };
}

/** Valid IP literals only, IPv4 before IPv6, without duplicates, at most MAX_ADDRESSES. */
export function usableAddresses(candidates: readonly unknown[]): string[] {
  const ips = candidates.filter((a): a is string => typeof a === "string" && a.length <= 64 && isIP(a) !== 0);
  const unique = [...new Set(ips)];
  const v4 = unique.filter((a) => isIP(a) === 4);
  const v6 = unique.filter((a) => isIP(a) === 6);
  return [...v4, ...v6].slice(0, MAX_ADDRESSES);
}
