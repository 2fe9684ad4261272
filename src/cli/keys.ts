/** `understudy keys generate|fingerprint`: the network key shared by every machine. */
import { existsSync, readFileSync } from "node:fs";
import nacl from "tweetnacl";
import { fingerprint, formatNetworkKey, parseNetworkKey } from "../core/keys.ts";
import { writeFileAtomic } from "../store/atomic-file.ts";
import { parseCommand, UsageError } from "./args.ts";

export const KEYS_HELP = `Usage:
  understudy keys generate [--out FILE]   make a new network key (printed, or written to FILE with mode 0600)
  understudy keys fingerprint FILE        print a key file's fingerprint

Every machine of one network needs the same key. Compare fingerprints to check.
`;

export function keysCommand(argv: string[]): number {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === "--help" || sub === "-h") {
    process.stdout.write(KEYS_HELP);
    return sub === undefined ? 2 : 0;
  }
  if (sub === "generate") {
    const { values, help } = parseCommand("understudy keys generate", rest, { out: { type: "string" } }, { min: 0, max: 0 });
    if (help) return printHelp();
    const key = nacl.randomBytes(32);
    const text = formatNetworkKey(key);
    if (typeof values.out === "string") {
      if (existsSync(values.out)) throw new UsageError(`keys generate: ${values.out} already exists; it was left as it is. Choose another --out or remove it first.`);
      writeFileAtomic(values.out, text, 0o600);
      process.stdout.write(`${values.out}: network key, fingerprint ${fingerprint(key)}\n`);
    } else {
      process.stdout.write(text);
      process.stderr.write(`fingerprint ${fingerprint(key)}\n`);
    }
    return 0;
  }
  if (sub === "fingerprint") {
    const { positionals, help } = parseCommand("understudy keys fingerprint", rest, {}, { min: 1, max: 1 });
    if (help) return printHelp();
    const file = positionals[0]!;
    if (!existsSync(file)) throw new UsageError(`keys fingerprint: ${file} does not exist`);
    process.stdout.write(`${fingerprint(parseNetworkKey(readFileSync(file, "utf8"), file))}\n`);
    return 0;
  }
  throw new UsageError(`understudy keys: unknown command "${sub}" (see "understudy keys --help")`);
}

function printHelp(): number {
  process.stdout.write(KEYS_HELP);
  return 0;
}
