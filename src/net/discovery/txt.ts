/**
 * The DNS-SD TXT record every machine advertises under `_understudy._tcp`:
 * who it is (id, name), what it does (role, license type, version, epoch) and
 * which network key it holds (fingerprint), so a key mismatch shows before
 * anyone connects. Pure: bytes and strings in, typed values or a reason out.
 *
 * TXT data comes from anyone on the link, so `parseTxt` trusts nothing: each
 * value must be valid UTF-8 within its size limit and match its schema, or the
 * whole record is refused with a reason (never an exception).
 */
import { isIP } from "node:net";
import { z } from "zod";
import { parseHostPort } from "../../core/config.ts";
import { InvalidInput } from "../../core/errors.ts";
import { LICENSE_TYPES } from "../../core/license.ts";
import { ROLES } from "../../core/roles.ts";

/** `_understudy._tcp` (dnssd wants the name without the leading underscore). */
export const SERVICE_NAME = "understudy";
export const SERVICE_TYPE = `_${SERVICE_NAME}._tcp`;

/** RFC 6763 §6.7: the first key says which layout follows; a record without `txtvers=1` is not one we can read. */
export const TXT_VERSION = "1";

/** What a machine without a license advertises as its license type. */
export const NO_LICENSE = "none";
export const ADVERTISED_LICENSES = [...LICENSE_TYPES, NO_LICENSE] as const;
export type AdvertisedLicense = (typeof ADVERTISED_LICENSES)[number];

/** A DNS label's limit; the name is also the DNS-SD instance name. */
export const MAX_NAME_BYTES = 63;
export const MAX_VERSION_CHARS = 32;
/** Epochs are counters persisted as integers; 15 digits stays well inside a safe integer. */
const MAX_EPOCH_DIGITS = 15;

/** TXT keys on the wire: short (dnssd allows at most 9 characters) and lower case (keys are case-insensitive). */
export const TXT_KEYS = {
  txtvers: "txtvers",
  id: "id",
  name: "name",
  role: "role",
  license: "lic",
  version: "ver",
  fingerprint: "fp",
  epoch: "epoch",
  listenHost: "at",
} as const;

/** Machine ids and key fingerprints: 8 bytes of SHA-512, 16 lower-case hex digits (core/keys.ts `fingerprint`). */
const hex16 = z.string().regex(/^[0-9a-f]{16}$/, "16 lower-case hex digits");

const utf8Bytes = (text: string) => new TextEncoder().encode(text).length;

/**
 * The same rule as the machine name in core/config.ts (so any machine's name
 * passes): ASCII letters, digits, space, dot, dash, underscore. Anything else
 * on the wire is not from an understudy and never reaches a page or a log.
 */
const machineName = z
  .string()
  .min(1)
  .max(MAX_NAME_BYTES)
  .regex(/^[A-Za-z0-9][A-Za-z0-9 ._-]*$/, "letters, digits, space, dot, dash, underscore")
  .refine((s) => !s.endsWith(" "), "no trailing space");

/**
 * The host the peer port listens on, when it names one (`--peer-listen 10.0.0.2:7401`):
 * an IP literal, never a wildcard. dnssd announces every interface's address,
 * and only this one answers. A zone (`fe80::1%eth0`) names the sender's own
 * interface, meaningless here, so it is not carried.
 */
const listenHost = z
  .string()
  .max(45)
  .refine((s) => isIP(s) !== 0 && !WILDCARDS.has(s) && !s.includes("%"), "an IP address this machine listens on (not a wildcard, no zone)");
const WILDCARDS = new Set(["0.0.0.0", "::", "0:0:0:0:0:0:0:0"]);

/**
 * What `--peer-listen` tells other machines: the host when it is one IP
 * address (its zone dropped), undefined when it listens on every interface
 * or names a host by name (then the addresses dnssd resolves are the ones to use).
 */
export function advertisedListenHost(peerListen: string | null): string | undefined {
  const host = peerListen === null ? undefined : parseHostPort(peerListen)?.host.split("%")[0];
  return host !== undefined && listenHost.safeParse(host).success ? host : undefined;
}

const version = z.string().regex(/^[0-9A-Za-z][0-9A-Za-z.+-]*$/, "letters, digits, dot, plus, dash").max(MAX_VERSION_CHARS);

/** What a machine says about itself. `Discovery` advertises it; peers read it back from the TXT record. */
export const machineAdvertSchema = z.strictObject({
  id: hex16,
  name: machineName,
  role: z.enum(ROLES),
  license: z.enum(ADVERTISED_LICENSES),
  version,
  /** Fingerprint of the network key. */
  fingerprint: hex16,
  epoch: z.int().nonnegative().max(10 ** MAX_EPOCH_DIGITS - 1),
  /** The one address its peer port listens on; absent when it listens on every interface. */
  at: listenHost.optional(),
});
export type MachineAdvert = z.infer<typeof machineAdvertSchema>;

/** The TXT record as strings, keyed by wire key. Unknown keys are dropped (a later version may add some). */
const wireSchema = z.object({
  [TXT_KEYS.txtvers]: z.literal(TXT_VERSION, { error: `only TXT version ${TXT_VERSION} is understood` }),
  [TXT_KEYS.id]: hex16,
  [TXT_KEYS.name]: machineName,
  [TXT_KEYS.role]: z.enum(ROLES),
  [TXT_KEYS.license]: z.enum(ADVERTISED_LICENSES),
  [TXT_KEYS.version]: version,
  [TXT_KEYS.fingerprint]: hex16,
  [TXT_KEYS.epoch]: z.string().regex(new RegExp(`^(0|[1-9][0-9]{0,${MAX_EPOCH_DIGITS - 1}})$`), "a decimal integer"),
  [TXT_KEYS.listenHost]: listenHost.optional(),
});

/**
 * The TXT record for `advert`, as dnssd takes it. Values are Buffers, not
 * strings: dnssd 0.4.1 sizes a string value by its UTF-16 length, which would cut
 * any non-ASCII value short. Throws InvalidInput when `advert` is not valid (our bug).
 */
export function encodeTxt(advert: MachineAdvert): Record<string, Buffer> {
  const checked = machineAdvertSchema.safeParse(advert);
  if (!checked.success) {
    throw new InvalidInput(`This machine cannot advertise itself: ${z.prettifyError(checked.error)}`, "discovery", checked.error);
  }
  const a = checked.data;
  const text: Record<string, string> = {
    [TXT_KEYS.txtvers]: TXT_VERSION,
    [TXT_KEYS.id]: a.id,
    [TXT_KEYS.name]: a.name,
    [TXT_KEYS.role]: a.role,
    [TXT_KEYS.license]: a.license,
    [TXT_KEYS.version]: a.version,
    [TXT_KEYS.fingerprint]: a.fingerprint,
    [TXT_KEYS.epoch]: String(a.epoch),
    ...(a.at === undefined ? {} : { [TXT_KEYS.listenHost]: a.at }),
  };
  return Object.fromEntries(Object.entries(text).map(([k, v]) => [k, Buffer.from(v, "utf8")]));
}

export type ParseResult<T> = { ok: true; value: T } | { ok: false; reason: string };

/** No single TXT string may exceed 255 bytes (RFC 6763 §6.1); larger claims are hostile. */
const MAX_TXT_VALUE_BYTES = 255;
const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * Reads a TXT record as dnssd hands it over (`txtRaw`: key → Buffer, `true`
 * for a bare key, `null` for `key=`) or as plain strings. Keys are matched
 * without regard to case; the first of duplicate keys wins (RFC 6763 §6.4).
 */
export function parseTxt(raw: unknown): ParseResult<MachineAdvert> {
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) return { ok: false, reason: "TXT record is not a key/value map" };
  const strings = new Map<string, string>();
  for (const [rawKey, value] of Object.entries(raw)) {
    const key = rawKey.toLowerCase();
    if (strings.has(key)) continue;
    let text: string;
    if (typeof value === "string") {
      text = value;
    } else if (value instanceof Uint8Array) {
      if (value.length > MAX_TXT_VALUE_BYTES) return { ok: false, reason: `TXT value "${safeKey(key)}" is ${value.length} bytes (at most ${MAX_TXT_VALUE_BYTES})` };
      try {
        text = strictUtf8.decode(value);
      } catch {
        return { ok: false, reason: `TXT value "${safeKey(key)}" is not valid UTF-8` };
      }
    } else {
      continue; // a bare key or `key=`: no value, so the field counts as missing
    }
    if (utf8Bytes(text) > MAX_TXT_VALUE_BYTES) return { ok: false, reason: `TXT value "${safeKey(key)}" is longer than ${MAX_TXT_VALUE_BYTES} bytes` };
    strings.set(key, text);
  }
  const wire = wireSchema.safeParse(Object.fromEntries(strings));
  if (!wire.success) return { ok: false, reason: `bad TXT record: ${summarize(wire.error)}` };
  const w = wire.data;
  return {
    ok: true,
    value: {
      id: w[TXT_KEYS.id],
      name: w[TXT_KEYS.name],
      role: w[TXT_KEYS.role],
      license: w[TXT_KEYS.license],
      version: w[TXT_KEYS.version],
      fingerprint: w[TXT_KEYS.fingerprint],
      epoch: Number(w[TXT_KEYS.epoch]),
      ...(w[TXT_KEYS.listenHost] === undefined ? {} : { at: w[TXT_KEYS.listenHost] }),
    },
  };
}

/** A key from the wire, fit for a log line. */
function safeKey(key: string): string {
  return key.replace(/[^\x20-\x7e]/g, "?").slice(0, 32);
}

/** One short line naming the fields at fault (never echoing the hostile values themselves). */
function summarize(error: z.ZodError): string {
  return error.issues
    .slice(0, 4)
    .map((issue) => `${issue.path.map(String).join(".") || "record"}: ${issue.message}`)
    .join("; ");
}
