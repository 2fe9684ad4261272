/** JSON that carries bytes: a Uint8Array travels as {"$bytes": base64} and comes back as a Uint8Array. */
export function encodeWireJson(value: unknown): Uint8Array {
  return new TextEncoder().encode(
    JSON.stringify(value, (_key, v) => (v instanceof Uint8Array ? { $bytes: Buffer.from(v).toString("base64") } : v)),
  );
}

export function decodeWireJson(payload: Uint8Array): unknown {
  try {
    return JSON.parse(new TextDecoder().decode(payload), (_key, v) =>
      v !== null && typeof v === "object" && typeof v.$bytes === "string" && Object.keys(v).length === 1 ? new Uint8Array(Buffer.from(v.$bytes, "base64")) : v,
    );
  } catch {
    return null;
  }
}
