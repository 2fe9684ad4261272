/**
 * Messages written for the command line name flags and subcommands; on the
 * setup pages the same advice points at the page itself. One table, read in
 * order: the first pattern that matches rewrites the message.
 */
const REWRITES: readonly [RegExp, string][] = [
  [/ Add a license on the setup page or with --license\./, " Add a license above."],
  [/ \(make one with "understudy keys generate"\)/, " (copy it from the main server's setup page)"],
  [/Rename the machine \(--name\)/, "Rename the machine"],
];

export function pageWords(message: string): string {
  for (const [pattern, replacement] of REWRITES) {
    if (pattern.test(message)) return message.replace(pattern, replacement);
  }
  return message;
}
