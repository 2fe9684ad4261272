/**
 * The machine key pair (Ed25519), made on first start and kept in the data dir
 * with mode 0600. The machine id is its public key's fingerprint.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import nacl from "tweetnacl";
import { z } from "zod";
import { InvalidInput } from "../core/errors.ts";
import { fingerprint } from "../core/keys.ts";
import { writeFileAtomic } from "./atomic-file.ts";

const machineKeyFileSchema = z.strictObject({
  understudyMachineKey: z.literal(1),
  secretKey: z.base64(),
});

export type MachineIdentity = { id: string; publicKey: Uint8Array; secretKey: Uint8Array };

export function loadOrCreateMachineIdentity(dataDir: string): MachineIdentity {
  const path = join(dataDir, "machine.key");
  if (!existsSync(path)) {
    const pair = nacl.sign.keyPair();
    const body = { understudyMachineKey: 1, secretKey: Buffer.from(pair.secretKey).toString("base64") };
    writeFileAtomic(path, `${JSON.stringify(body)}\n`, 0o600);
    return { id: fingerprint(pair.publicKey), ...pair };
  }
  let parsed;
  try {
    parsed = machineKeyFileSchema.parse(JSON.parse(readFileSync(path, "utf8")));
  } catch {
    throw new InvalidInput(`${path} is not an understudy machine key. Move it away and start again to make a new one (the machine gets a new id).`, "data");
  }
  const secretKey = new Uint8Array(Buffer.from(parsed.secretKey, "base64"));
  if (secretKey.length !== nacl.sign.secretKeyLength) {
    throw new InvalidInput(`${path} holds a key of the wrong length. Move it away and start again to make a new one.`, "data");
  }
  const pair = nacl.sign.keyPair.fromSecretKey(secretKey);
  return { id: fingerprint(pair.publicKey), ...pair };
}
