/**
 * Reads bun test's JUnit file and prints the closing line CI reads:
 * "N passed, N failed, N skipped". Exits 1 when any test failed or none ran.
 */
export {};

const file = process.argv[2];
if (!file) {
  console.error("junit-summary: give the JUnit XML file");
  process.exit(2);
}
const xml = await Bun.file(file).text().catch(() => "");
let passed = 0;
let failed = 0;
let skipped = 0;
for (const match of xml.matchAll(/<testcase\b[^>]*?(\/>|>([\s\S]*?)<\/testcase>)/g)) {
  const body = match[2] ?? "";
  if (/<(failure|error)\b/.test(body)) failed++;
  else if (/<skipped\b/.test(body)) skipped++;
  else passed++;
}
console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(failed > 0 || passed === 0 ? 1 : 0);
