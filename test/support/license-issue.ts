/**
 * Signs a license with the development vendor key, for tests and the demo:
 *   bun run license:issue -- --type TYPE --holder NAME|'*' [--days N] --out FILE
 */
import { parseArgs } from "node:util";
import { writeFileSync } from "node:fs";
import { issueDevLicense } from "./licenses.ts";
import { LICENSE_TYPES, type LicenseType } from "../../src/core/license.ts";

function fail(message: string): never {
  console.error(`license:issue: ${message}`);
  process.exit(2);
}

let values;
try {
  ({ values } = parseArgs({
    options: { type: { type: "string" }, holder: { type: "string" }, days: { type: "string" }, out: { type: "string" } },
    strict: true,
  }));
} catch (error) {
  fail((error as Error).message);
}
if (!values.type || !LICENSE_TYPES.includes(values.type as LicenseType)) fail(`--type must be one of ${LICENSE_TYPES.join(", ")}`);
if (!values.holder) fail("--holder NAME (or '*' for any machine) is required");
if (!values.out) fail("--out FILE is required");
const days = values.days === undefined ? null : Number(values.days);
if (days !== null && !(Number.isInteger(days) && days > 0)) fail("--days must be a positive whole number");
const doc = issueDevLicense({ type: values.type as LicenseType, holder: values.holder, days });
writeFileSync(values.out, `${JSON.stringify(doc, null, 2)}\n`);
console.log(`${values.out}: ${doc.type} license for ${doc.holder}, ${doc.expiresAt ? `expires ${doc.expiresAt}` : "no expiry"}`);
