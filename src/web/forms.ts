/** Shapes of every setup form: the single source of truth for what the pages accept. */
import { z } from "zod";
import { isIP } from "node:net";
import { DEFAULT_PEER_PORT, formatHostPort, parseHostPort } from "../core/config.ts";
import { ROLE_ADDRESSES, ROLES } from "../core/roles.ts";

export const MAX_LICENSE_BYTES = 64 * 1024;

/** A bare IP address gets the default peer port; anything else is left as typed. */
export function withDefaultPort(s: string): string {
  return isIP(s) !== 0 ? formatHostPort({ host: s, port: DEFAULT_PEER_PORT }) : s;
}

/** An IP address; the peer port may be left out when it is the default one. */
const optionalAddress = z
  .string()
  .trim()
  .max(300)
  .optional()
  .transform((s) => (!s ? null : withDefaultPort(s)))
  .refine((s) => s === null || parseHostPort(s) !== null, { message: "Type an IP address such as 10.0.0.1 (or 10.0.0.1:7401)." });

/**
 * The role form. Each role uses only some of the addresses (ROLE_ADDRESSES);
 * the others are dropped, and a client's backup only with "Connect to a Backup".
 */
export const roleFormSchema = z
  .object({
    role: z.enum(ROLES, { message: "Choose one of the roles above." }),
    main: optionalAddress,
    backup: optionalAddress,
    connectBackup: z.literal("on").optional(),
  })
  .transform(({ connectBackup, ...f }) => ({
    role: f.role,
    main: ROLE_ADDRESSES[f.role].main ? f.main : null,
    backup: ROLE_ADDRESSES[f.role].backup && (f.role !== "client" || connectBackup === "on") ? f.backup : null,
  }))
  .refine((f) => f.role !== "client" || f.main !== null, { message: "Type the main server's IP address.", path: ["main"] });
export type RoleForm = z.infer<typeof roleFormSchema>;

/** Which server addresses each role's form asks for. */

export const licenseFormSchema = z
  .object({
    license: z.string().max(MAX_LICENSE_BYTES, "That is far too long for a license.").optional(),
    licenseFile: z.instanceof(File).optional(),
  })
  .refine((f) => (f.license?.trim() ?? "") !== "" || (f.licenseFile !== undefined && f.licenseFile.size > 0), {
    message: "Paste the license or choose its file.",
    path: ["license"],
  })
  .refine((f) => f.licenseFile === undefined || f.licenseFile.size <= MAX_LICENSE_BYTES, {
    message: "That file is far too big to be a license.",
    path: ["license"],
  });

export const keyFormSchema = z.discriminatedUnion("action", [
  /** `replaces`: the fingerprint of the key the page showed (empty when none), so a key is never replaced unasked: not by a page without JavaScript (no confirmation), nor by one drawn before the key changed. */
  z.object({ action: z.literal("generate"), replaces: z.string().trim().max(64).optional().default("") }),
  z.object({ action: z.literal("paste"), key: z.string().trim().min(1, "Paste the network key.").max(500) }),
]);

/** The main's failback: move back on its own, or wait for someone to switch back. */
export const failbackFormSchema = z.object({ failback: z.enum(["auto", "manual"], { message: "Choose Automatic or Manual." }) });

/** First message per field, for showing each next to its input. */
export function fieldErrors(error: z.ZodError): Record<string, string> {
  const out: Record<string, string> = {};
  for (const issue of error.issues) {
    const field = String(issue.path[0] ?? "form");
    out[field] ??= issue.message;
  }
  return out;
}
