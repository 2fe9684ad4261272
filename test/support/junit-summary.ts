/**
 * Reads bun test's JUnit file and prints the closing lines CI reads: why each
 * failed test failed (its file, name and message, since CI keeps only the tail
 * of the log), then "N passed, N failed, N skipped". Exits 1 when any test
 * failed or none ran.
 */
export {};

const MESSAGE_CHARS = 2_000;

const file = process.argv[2];
if (!file) {
  console.error("junit-summary: give the JUnit XML file");
  process.exit(2);
}

function unescapeXml(text: string): string {
  return text.replace(/&(#x?[0-9a-fA-F]+|amp|lt|gt|quot|apos);/g, (_all, name: string) => {
    if (name.startsWith("#x")) return String.fromCodePoint(Number.parseInt(name.slice(2), 16));
    if (name.startsWith("#")) return String.fromCodePoint(Number.parseInt(name.slice(1), 10));
    return { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'" }[name] ?? "";
  });
}

function attribute(tag: string, name: string): string {
  const match = new RegExp(`\\b${name}="([^"]*)"`).exec(tag);
  return match ? unescapeXml(match[1]!) : "";
}

const xml = await Bun.file(file).text().catch(() => "");
let passed = 0;
let skipped = 0;
const failures: string[] = [];
for (const match of xml.matchAll(/<testcase\b([^>]*?)(\/>|>([\s\S]*?)<\/testcase>)/g)) {
  const body = match[3] ?? "";
  const failure = /<(failure|error)\b[^>]*>/.exec(body);
  if (failure) {
    const message = attribute(failure[0], "message");
    const clipped = message.length > MESSAGE_CHARS ? `${message.slice(0, MESSAGE_CHARS)}…` : message;
    failures.push(`(fail) ${attribute(match[1]!, "file")}: ${attribute(match[1]!, "name")}\n${clipped.trimEnd()}`);
  } else if (/<skipped\b/.test(body)) skipped++;
  else passed++;
}
if (failures.length > 0) console.log(`\nWhy the failed tests failed:\n\n${failures.join("\n\n")}\n`);
console.log(`${passed} passed, ${failures.length} failed, ${skipped} skipped`);
process.exit(failures.length > 0 || passed === 0 ? 1 : 0);
