/**
 * The vendor public key that license signatures are checked against. build.ts
 * embeds it with `define`; a release build passes the vendor's key in
 * UNDERSTUDY_VENDOR_PUBLIC_KEY. Without one (source runs, development builds)
 * it is the public half of the development pair in test/support.
 */
declare const UNDERSTUDY_EMBEDDED_VENDOR_KEY: string | undefined;

export const DEVELOPMENT_VENDOR_PUBLIC_KEY = "Kcu/Orx3JithsHES3DU3nRKsH2KhfplVWwGmVvYrS/0=";

export function vendorPublicKey(): Uint8Array {
  const embedded = typeof UNDERSTUDY_EMBEDDED_VENDOR_KEY === "string" ? UNDERSTUDY_EMBEDDED_VENDOR_KEY : DEVELOPMENT_VENDOR_PUBLIC_KEY;
  return new Uint8Array(Buffer.from(embedded, "base64"));
}
