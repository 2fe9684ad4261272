/**
 * The license type each engine machine says it runs under, read from its
 * peer port's public `GET /identity` (docs/design.md §Render-engine backups:
 * engines with different licenses are a warning). Advisory only: it never
 * refuses a group, so an engine that does not answer is simply left out.
 */
import { z } from "zod";
import { LICENSE_TYPES, type LicenseType } from "../core/license.ts";

/** Each engine's answer must come within this, so the panel never waits long. */
export const LICENSE_ASK_TIMEOUT_MS = 1_000;

const identityLicenseSchema = z.object({ id: z.string(), license: z.enum(LICENSE_TYPES).nullable().optional() });

/** Machine id → license type, for the machines in `peers` that answered as themselves. */
export async function engineLicenses(peers: readonly { id: string; address: string }[], fetchImpl: typeof fetch = fetch): Promise<Record<string, LicenseType>> {
  const answers = await Promise.all(
    peers.map(async (peer) => {
      try {
        const response = await fetchImpl(`http://${peer.address}/identity`, { signal: AbortSignal.timeout(LICENSE_ASK_TIMEOUT_MS) });
        const parsed = identityLicenseSchema.safeParse(await response.json());
        return parsed.success && parsed.data.id === peer.id && parsed.data.license ? ([peer.id, parsed.data.license] as const) : null;
      } catch {
        return null;
      }
    }),
  );
  return Object.fromEntries(answers.filter((a) => a !== null));
}
