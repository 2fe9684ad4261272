/**
 * `bun run bench [NAME]`: benchmarks that print tables (never timed
 * assertions in tests). NAME: failover | false-failover | store | crypto | flood | hub | faults | console | folder-sync | engines (default: all).
 */
const benches: Record<string, string> = {
  failover: `${import.meta.dir}/failover.ts`,
  "false-failover": `${import.meta.dir}/false-failover.ts`,
  store: `${import.meta.dir}/store.ts`,
  crypto: `${import.meta.dir}/crypto.ts`,
  flood: `${import.meta.dir}/flood.ts`,
  hub: `${import.meta.dir}/hub.ts`,
  faults: `${import.meta.dir}/faults.ts`,
  console: `${import.meta.dir}/console.ts`,
  "folder-sync": `${import.meta.dir}/folder-sync.ts`,
  engines: `${import.meta.dir}/engines.ts`,
};
const names = process.argv.slice(2);
for (const name of names) {
  if (!(name in benches)) {
    console.error(`bench: unknown benchmark "${name}" (${Object.keys(benches).join(", ")})`);
    process.exit(2);
  }
}
for (const name of names.length > 0 ? names : Object.keys(benches)) {
  const result = Bun.spawnSync([process.execPath, benches[name]!, ...(process.env.BENCH_ARGS?.split(" ").filter(Boolean) ?? [])], { stdout: "inherit", stderr: "inherit" });
  if (result.exitCode !== 0) process.exit(result.exitCode ?? 1);
}
