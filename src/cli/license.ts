/** `understudy license show FILE`: check a license against the embedded vendor key and print it. */
import { existsSync, readFileSync } from "node:fs";
import { checkLicenseInForce, LICENSE_TYPE_LABELS, readLicense } from "../core/license.ts";
import { AppError } from "../core/errors.ts";
import { vendorPublicKey } from "../vendor-key.ts";
import { parseCommand, UsageError } from "./args.ts";
import { wallClock } from "../net/system-time.ts";

export const LICENSE_HELP = `Usage: understudy license show FILE

Checks the license's signature and prints its type, holder and expiry.
`;

export function licenseCommand(argv: string[]): number {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === "--help" || sub === "-h") {
    process.stdout.write(LICENSE_HELP);
    return sub === undefined ? 2 : 0;
  }
  if (sub !== "show") throw new UsageError(`understudy license: unknown command "${sub}" (see "understudy license --help")`);
  const { positionals, help } = parseCommand("understudy license show", rest, {}, { min: 1, max: 1 });
  if (help) {
    process.stdout.write(LICENSE_HELP);
    return 0;
  }
  const file = positionals[0]!;
  if (!existsSync(file)) throw new UsageError(`license show: ${file} does not exist`);
  const doc = readLicense(readFileSync(file, "utf8"), vendorPublicKey(), file);
  let standing = "valid";
  try {
    checkLicenseInForce(doc, doc.holder === "*" ? "*" : doc.holder, wallClock.now());
  } catch (error) {
    if (!(error instanceof AppError)) throw error;
    standing = error.message;
  }
  process.stdout.write(
    [
      `type:     ${doc.type} (${LICENSE_TYPE_LABELS[doc.type]})`,
      `holder:   ${doc.holder === "*" ? "* (any machine)" : doc.holder}`,
      `issued:   ${doc.issuedAt}`,
      `expires:  ${doc.expiresAt ?? "never"}`,
      `standing: ${standing}`,
      "",
    ].join("\n"),
  );
  return standing === "valid" ? 0 : 1;
}
