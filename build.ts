/**
 * Builds one self-contained executable per target into dist/, with views,
 * static files (htmx from node_modules) and the vendor license public key
 * embedded, and the version and git commit stamped in.
 *   bun build.ts [--target linux-x64|windows-x64|all]   (default all)
 */
import { parseArgs } from "node:util";
import { mkdirSync } from "node:fs";
import type { BunPlugin } from "bun";
import { DEVELOPMENT_VENDOR_PUBLIC_KEY } from "./src/vendor-key.ts";

export const TARGETS = {
  "linux-x64": { compile: "bun-linux-x64", outfile: "dist/understudy-linux-x64" },
  "windows-x64": { compile: "bun-windows-x64", outfile: "dist/understudy-windows-x64.exe" },
} as const;
type TargetName = keyof typeof TARGETS;

/** mqtt-packet's `debug`, silent at no cost per packet unless DEBUG is set (src/services/mqtt-packet-debug.ts says why). */
const quietMqttPacketDebug: BunPlugin = {
  name: "quiet-mqtt-packet-debug",
  setup(build) {
    build.onResolve({ filter: /^debug$/ }, (args) =>
      /[\\/]node_modules[\\/]mqtt-packet[\\/]/.test(args.importer) ? { path: `${import.meta.dir}/src/services/mqtt-packet-debug.ts` } : undefined,
    );
  },
};

function gitCommit(): string {
  const result = Bun.spawnSync(["git", "rev-parse", "--short=12", "HEAD"], { cwd: import.meta.dir, stderr: "ignore" });
  if (result.exitCode !== 0) return "unknown";
  const dirty = Bun.spawnSync(["git", "status", "--porcelain", "--untracked-files=no"], { cwd: import.meta.dir }).stdout.toString().trim();
  return `${result.stdout.toString().trim()}${dirty ? "-dirty" : ""}`;
}

export async function buildExecutables(names: TargetName[]): Promise<string[]> {
  const vendorKey = process.env.UNDERSTUDY_VENDOR_PUBLIC_KEY ?? DEVELOPMENT_VENDOR_PUBLIC_KEY;
  if (Buffer.from(vendorKey, "base64").length !== 32) throw new Error("UNDERSTUDY_VENDOR_PUBLIC_KEY must be a base64 Ed25519 public key (32 bytes).");
  const define = {
    UNDERSTUDY_COMMIT: JSON.stringify(gitCommit()),
    UNDERSTUDY_EMBEDDED_VENDOR_KEY: JSON.stringify(vendorKey),
  };
  mkdirSync(`${import.meta.dir}/dist`, { recursive: true });
  const outputs: string[] = [];
  for (const name of names) {
    const target = TARGETS[name];
    const result = await Bun.build({
      entrypoints: [`${import.meta.dir}/src/main.ts`],
      compile: { target: target.compile, outfile: `${import.meta.dir}/${target.outfile}` },
      define,
      plugins: [quietMqttPacketDebug],
    });
    if (!result.success) {
      for (const log of result.logs) console.error(log);
      throw new Error(`Building ${name} failed.`);
    }
    outputs.push(target.outfile);
  }
  if (vendorKey === DEVELOPMENT_VENDOR_PUBLIC_KEY) {
    console.error("build: embedded the development license key (set UNDERSTUDY_VENDOR_PUBLIC_KEY for a release)");
  }
  return outputs;
}

if (import.meta.main) {
  const { values } = parseArgs({ options: { target: { type: "string", default: "all" } }, strict: true });
  const names = values.target === "all" ? (Object.keys(TARGETS) as TargetName[]) : [values.target as TargetName];
  for (const name of names) {
    if (!(name in TARGETS)) {
      console.error(`build: unknown --target ${name} (linux-x64, windows-x64 or all)`);
      process.exit(2);
    }
  }
  const started = performance.now();
  const outputs = await buildExecutables(names);
  console.log(`build: ${outputs.join(", ")} in ${((performance.now() - started) / 1000).toFixed(1)} s`);
}
