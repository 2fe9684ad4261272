/** Command-line parsing on node:util parseArgs (strict), with errors that name the flag. */
import { parseArgs, type ParseArgsConfig } from "node:util";
import { AppError } from "../core/errors.ts";

/** A wrong command line: printed as one line, exit code 2. */
export class UsageError extends AppError {
  constructor(message: string) {
    super("USAGE", message, { status: 400 });
    this.name = "UsageError";
  }
}

export type Options = NonNullable<ParseArgsConfig["options"]>;

export function parseCommand<O extends Options>(command: string, argv: string[], options: O, positionals: { min: number; max: number }) {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: { ...options, help: { type: "boolean", short: "h" } }, strict: true, allowPositionals: true });
  } catch (error) {
    throw new UsageError(`${command}: ${describeParseError(error as Error & { code?: string })} (see "${command} --help")`);
  }
  const help = (parsed.values as Record<string, unknown>).help === true;
  if (!help && (parsed.positionals.length < positionals.min || parsed.positionals.length > positionals.max)) {
    const got = parsed.positionals.length;
    const extra = got > positionals.max ? `unexpected argument "${parsed.positionals[positionals.max]}"` : "missing argument";
    throw new UsageError(`${command}: ${extra} (see "${command} --help")`);
  }
  return { values: parsed.values, positionals: parsed.positionals, help };
}

function describeParseError(error: Error & { code?: string }): string {
  const flag = /'(-[^' ]+)/.exec(error.message)?.[1];
  if (error.code === "ERR_PARSE_ARGS_UNKNOWN_OPTION" && flag) return `unknown flag ${flag}`;
  if (error.code === "ERR_PARSE_ARGS_INVALID_OPTION_VALUE" && flag) return `flag ${flag} needs a value`;
  return error.message.split("\n")[0]!.replace(/\.$/, "");
}
