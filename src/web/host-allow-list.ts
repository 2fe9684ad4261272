/**
 * DNS rebinding guard for the setup pages: a web page the operator opens can
 * make the browser send requests to this machine under the attacker's own
 * name, with a matching Origin, so the CSRF check passes. Only Host values that
 * name this machine are served: loopback names and addresses, this machine's
 * host name and interface addresses, and names given with --ui-host.
 */
import { hostname, networkInterfaces } from "node:os";

/** The host part of a Host header, lower case, without port or IPv6 brackets; null when it is not one. */
export function hostOfHeader(header: string | undefined): string | null {
  if (!header) return null;
  const text = header.trim().toLowerCase();
  const bracketed = /^\[([0-9a-f:.]+)\](?::\d{1,5})?$/.exec(text);
  if (bracketed) return bracketed[1]!;
  const plain = /^([a-z0-9.-]+)(?::\d{1,5})?$/.exec(text);
  return plain ? plain[1]!.replace(/\.$/, "") : null;
}

/** Loopback names cannot be registered by anyone else (RFC 6761), so no attacker can point one at this machine. */
export function isLoopbackHost(host: string): boolean {
  return host === "localhost" || host.endsWith(".localhost") || host === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/** This machine's own names: its host name (also with .local for mDNS) and every interface address, read now. */
export function machineHostNames(): Set<string> {
  const names = new Set<string>();
  const own = hostname().toLowerCase();
  if (own) names.add(own).add(`${own}.local`);
  for (const addresses of Object.values(networkInterfaces())) {
    for (const a of addresses ?? []) names.add(a.address.toLowerCase().replace(/%.*$/, ""));
  }
  return names;
}

/** `extra`: names given with --ui-host. The interface addresses are looked up only for a Host that is none of the others. */
export function hostAllowed(header: string | undefined, extra: readonly string[], ownNames: () => Set<string> = machineHostNames): boolean {
  const host = hostOfHeader(header);
  if (host === null) return false;
  if (isLoopbackHost(host)) return true;
  if (extra.some((name) => name.toLowerCase() === host)) return true;
  return ownNames().has(host);
}
