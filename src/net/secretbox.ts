/**
 * NaCl secretbox (XSalsa20-Poly1305): the same bytes as tweetnacl's `secretbox`
 * and `secretbox.open`, computed by libsodium compiled to WebAssembly. Every
 * sealed frame passes here, and in the hub bench tweetnacl's pure-JS Poly1305
 * and Salsa20 were the largest cost of every process (a third of it); libsodium
 * does a 30 KB batch of hub frames 2-3 times faster. The wire does not change:
 * a peer still on tweetnacl opens these boxes and its boxes open here.
 */
import sodium from "libsodium-wrappers";

// Compiling the WebAssembly takes a few ms once, when this module is first imported.
await sodium.ready;

/** `box` = Poly1305 tag (16 bytes) then the ciphertext, as tweetnacl's `secretbox` returns it. */
export function secretbox(payload: Uint8Array, nonce: Uint8Array, key: Uint8Array): Uint8Array {
  return sodium.crypto_secretbox_easy(payload, nonce, key);
}

/** The payload, or null when the box was not sealed under `key` and `nonce` (tampered, wrong key). */
export function secretboxOpen(box: Uint8Array, nonce: Uint8Array, key: Uint8Array): Uint8Array | null {
  try {
    return sodium.crypto_secretbox_open_easy(box, nonce, key);
  } catch {
    return null;
  }
}
