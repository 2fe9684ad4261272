/** Entry: parse the command line, run the subcommand, turn errors into one line and an exit code. */
import { AppError } from "./core/errors.ts";
import { UsageError } from "./cli/args.ts";
import { assetCommand } from "./cli/asset-commands.ts";
import { fileCommand } from "./cli/file-commands.ts";
import { hubCommand } from "./cli/hub-commands.ts";
import { keysCommand } from "./cli/keys.ts";
import { licenseCommand } from "./cli/license.ts";
import { runCommand } from "./cli/run.ts";
import { serviceCommand } from "./cli/service.ts";
import { statusCommand } from "./cli/status.ts";
import { COMMIT, VERSION } from "./version.ts";

const HELP = `understudy ${VERSION}: keeps a live-production network on air when its server dies.

Usage: understudy [command] [flags]

  run (default)                 start this machine (see "understudy run --help")
  status [--json] [--ui URL]    ask a running machine for its status
  keys generate [--out FILE]    make a network key
  keys fingerprint FILE         print a key's fingerprint
  license show FILE             check and print a license
  sub FILTER | pub TOPIC JSON   subscribe / publish through this machine's node
  set KEY JSON | get KEY        retained Data Hub values
  pull DIR                      bring a folder of show files up to the server's revision
  push DIR [-m MESSAGE]         send the folder's changes as a new revision
  log [--limit N]               list the show file's revisions
  asset put FILE [--name N]     upload a large media file to the Asset Hub (prints its id)
  asset get ID OUT              download an asset into OUT (--range START-END for part)
  asset ls                      list the Asset Hub's assets
  service install|uninstall|status   start at boot (systemd on Linux, a Windows service)
  version                       print version and commit

Every command takes --help.
`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case undefined:
      return runCommand([]);
    case "run":
      return runCommand(rest);
    case "status":
      return statusCommand(rest);
    case "pub":
    case "sub":
    case "set":
    case "get":
      return hubCommand(command, rest);
    case "pull":
    case "push":
    case "log":
      return fileCommand(command, rest);
    case "asset":
      return assetCommand(rest);
    case "keys":
      return keysCommand(rest);
    case "service":
      return serviceCommand(rest);
    case "license":
      return licenseCommand(rest);
    case "version":
    case "--version":
    case "-v":
      process.stdout.write(`understudy ${VERSION} (${COMMIT})\n`);
      return 0;
    case "help":
    case "--help":
    case "-h":
      process.stdout.write(HELP);
      return 0;
    default:
      if (command.startsWith("-")) return runCommand(argv);
      process.stderr.write(`understudy: unknown command "${command}" (see "understudy --help")\n`);
      return 2;
  }
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (error) {
  if (error instanceof UsageError) {
    process.stderr.write(`${error.message}\n`);
    process.exitCode = 2;
  } else if (error instanceof AppError) {
    process.stderr.write(`understudy: ${error.message}\n`);
    process.exitCode = error.status === 400 ? 2 : 1;
  } else {
    process.stderr.write(`understudy: unexpected failure: ${(error as Error)?.stack ?? String(error)}\n`);
    process.exitCode = 1;
  }
}
