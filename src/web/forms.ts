/** Shapes of every setup form: the single source of truth for what the pages accept. */
import { z } from "zod";
import { parseHostPort } from "../core/config.ts";
import { ROLES } from "../core/roles.ts";

export const MAX_LICENSE_BYTES = 64 * 1024;

const optionalAddress = z
  .string()
  .trim()
  .max(300)
  .optional()
  .transform((s) => (s ? s : null))
  .refine((s) => s === null || parseHostPort(s) !== null, { message: "Type an address as IP:PORT, e.g. 10.0.0.1:7401." });

export const roleFormSchema = z.object({
  role: z.enum(ROLES, { message: "Choose one of the roles above." }),
  main: optionalAddress,
  backup: optionalAddress,
});
export type RoleForm = z.infer<typeof roleFormSchema>;

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
  z.object({ action: z.literal("generate") }),
  z.object({ action: z.literal("paste"), key: z.string().trim().min(1, "Paste the network key.").max(500) }),
]);

/** First message per field, for showing each next to its input. */
export function fieldErrors(error: z.ZodError): Record<string, string> {
  const out: Record<string, string> = {};
  for (const issue of error.issues) {
    const field = String(issue.path[0] ?? "form");
    out[field] ??= issue.message;
  }
  return out;
}
