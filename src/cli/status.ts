/** `understudy status`: asks a running machine's local API. */
import { machineStatusSchema } from "../core/status.ts";
import { AppError } from "../core/errors.ts";
import { parseCommand, UsageError } from "./args.ts";

export const STATUS_HELP = `Usage: understudy status [--json] [--ui URL]

Asks a running machine (default http://127.0.0.1:7400) for its status.
A UI with a password uses UNDERSTUDY_UI_PASSWORD.
`;

export async function statusCommand(argv: string[]): Promise<number> {
  const { values, help } = parseCommand("understudy status", argv, { json: { type: "boolean" }, ui: { type: "string" } }, { min: 0, max: 0 });
  if (help) {
    process.stdout.write(STATUS_HELP);
    return 0;
  }
  const base = typeof values.ui === "string" ? values.ui : "http://127.0.0.1:7400";
  let url: URL;
  try {
    url = new URL("/api/status", base);
  } catch {
    throw new UsageError(`understudy status: --ui ${base} is not a URL (e.g. http://127.0.0.1:7400)`);
  }
  const headers: Record<string, string> = {};
  const password = process.env.UNDERSTUDY_UI_PASSWORD;
  if (password) headers.authorization = `Basic ${Buffer.from(`understudy:${password}`).toString("base64")}`;
  let response: Response;
  try {
    response = await fetch(url, { headers, signal: AbortSignal.timeout(3000) });
  } catch {
    throw new AppError("NOT_RUNNING", `No understudy answers at ${base}. Is it running, and is that its --ui-listen address?`, { status: 503 });
  }
  if (response.status === 401) throw new AppError("UI_PASSWORD", `${base} needs the UI password: set UNDERSTUDY_UI_PASSWORD.`, { status: 401 });
  const parsed = machineStatusSchema.safeParse(await response.json().catch(() => null));
  if (!response.ok || !parsed.success) throw new AppError("NOT_UNDERSTUDY", `${base} did not answer like an understudy machine (HTTP ${response.status}).`, { status: 502 });
  const s = parsed.data;
  if (values.json) {
    process.stdout.write(`${JSON.stringify(s)}\n`);
    return 0;
  }
  process.stdout.write(
    [
      `${s.name} (${s.id})  ${s.roleLabel}  [${s.chip}]`,
      `license:     ${s.license ? `${s.license.type}, ${s.license.holder}, ${s.license.expiresAt ?? "no expiry"}` : "none"}`,
      `network key: ${s.networkKeyFingerprint ?? "none"}`,
      `main:        ${s.main ?? "-"}`,
      `backup:      ${s.backup ?? "-"}`,
      `peer port:   ${s.peerListen ?? "closed"}`,
      `version:     ${s.version} (${s.commit})`,
      "",
    ].join("\n"),
  );
  return 0;
}
