/** @jsxImportSource hono/jsx */
/**
 * The local setup page: license, role and network key, each its own form that
 * htmx swaps in place, with errors shown next to the field they are about.
 */
import type { SetupView } from "../view-models/setup-view.ts";
import { ROLE_ADDRESSES } from "../../core/roles.ts";
import { pageWords } from "./page-words.ts";
import { Layout } from "./layout.tsx";

export type FieldErrors = Partial<Record<string, string>>;
function FieldError(props: { errors: FieldErrors; field: string }) {
  const message = props.errors[props.field];
  return message ? (
    <p class="field-error" id={`${props.field}-error`} role="alert" data-testid={`${props.field}-error`}>
      {pageWords(message)}
    </p>
  ) : null;
}

function Saved(props: { message: string | undefined }) {
  return props.message ? <p class="saved" role="status">{props.message}</p> : null;
}

/** When a license was just saved, also sends the role section out of band: the license decides which roles are enabled. */
export function LicenseSection(props: { view: SetupView; errors?: FieldErrors; saved?: string; typed?: string }) {
  const { license, pinned } = props.view;
  const errors = props.errors ?? {};
  const section = (
    <section id="license-section" class="card">
      <h2>License</h2>
      {license ? (
        <dl class="license" data-testid="license-summary">
          <dt>Type</dt>
          <dd>{license.typeLabel}</dd>
          <dt>Holder</dt>
          <dd>{license.holder === "*" ? "any machine" : license.holder}</dd>
          <dt>Expires</dt>
          <dd>{license.expiresAt ? license.expiresAt.slice(0, 10) : "never"}</dd>
        </dl>
      ) : (
        <p>No license yet: this machine can only run stand-alone.</p>
      )}
      {pinned.license ? (
        <p class="pinned">Set by --license on the command line: change the file it names.</p>
      ) : (
        <form hx-post="/setup/license" hx-target="#license-section" hx-swap="outerHTML" method="post" action="/setup/license" enctype="multipart/form-data">
          <label for="license">Paste the license</label>
          <textarea id="license" name="license" rows={4} aria-invalid={errors.license ? "true" : undefined}>
            {props.typed ?? ""}
          </textarea>
          <label for="licenseFile">or upload the license file</label>
          <input id="licenseFile" name="licenseFile" type="file" accept=".json,.lic,application/json" />
          <FieldError errors={errors} field="license" />
          <button type="submit">Use this license</button>
          <Saved message={props.saved} />
        </form>
      )}
    </section>
  );
  return props.saved ? (
    <>
      {section}
      <RoleSection view={props.view} outOfBand />
    </>
  ) : (
    section
  );
}

const usesMain = (role: string) => ROLE_ADDRESSES[role as keyof typeof ROLE_ADDRESSES]?.main ?? false;
const usesBackup = (role: string) => ROLE_ADDRESSES[role as keyof typeof ROLE_ADDRESSES]?.backup ?? false;

/**
 * Only the fields the chosen role needs: CSS shows them by the checked radio
 * (`:has()`), so the form works without JavaScript. The client form follows
 * the documentation: main server's IP, Connect to a Backup, backup's IP, Connect.
 */
export function RoleSection(props: { view: SetupView; errors?: FieldErrors; saved?: string; values?: Record<string, string>; outOfBand?: boolean }) {
  const { view } = props;
  const errors = props.errors ?? {};
  const values = props.values ?? {};
  const role = values.role ?? view.role;
  const main = values.main ?? view.main ?? "";
  const backup = values.backup ?? view.backup ?? "";
  const connectBackup = values.connectBackup !== undefined ? values.connectBackup === "on" : backup !== "";
  const { pinned } = view;
  const everythingPinned = pinned.role && (pinned.main || !usesMain(role)) && (pinned.backup || !usesBackup(role));
  const pinnedNote = (flag: string) => <p class="pinned">Set by {flag} on the command line.</p>;
  return (
    <section id="role-section" class="card" hx-swap-oob={props.outOfBand ? "true" : undefined}>
      <h2>Role</h2>
      <form class={`role-form role-is-${role}`} hx-post="/setup/role" hx-target="#role-section" hx-swap="outerHTML" method="post" action="/setup/role">
        {pinned.role ? (
          <>
            <p>
              This machine is a <strong>{view.roles.find((c) => c.role === view.role)?.label ?? view.role}</strong>.
            </p>
            {pinnedNote("--role")}
            <input type="hidden" name="role" value={view.role} />
          </>
        ) : (
          <fieldset>
            <legend>What this machine does</legend>
            {view.roles.map((choice) => (
              <div class={`role-choice${choice.allowed ? "" : " disabled"}`}>
                <input type="radio" id={`role-${choice.role}`} name="role" value={choice.role} checked={role === choice.role} disabled={!choice.allowed} />
                <label for={`role-${choice.role}`}>{choice.label}</label>
                {choice.reason ? (
                  <span class="reason" data-testid={`role-${choice.role}-reason`}>
                    {pageWords(choice.reason)}
                  </span>
                ) : null}
              </div>
            ))}
          </fieldset>
        )}
        <FieldError errors={errors} field="role" />
        <div class="for-main-address">
          <label for="main">Main server's IP</label>
          <input id="main" name="main" value={main} placeholder="10.0.0.1" readonly={pinned.main} aria-invalid={errors.main ? "true" : undefined} />
          <FieldError errors={errors} field="main" />
          {pinned.main ? pinnedNote("--main") : <p class="reason">A backup server may leave this empty: the main server adds it with Add Backup server.</p>}
        </div>
        <div class="for-connect-backup">
          {pinned.backup ? (
            <input type="hidden" name="connectBackup" value="on" />
          ) : (
            <label class="switch">
              <input type="checkbox" id="connectBackup" name="connectBackup" value="on" checked={connectBackup} /> Connect to a Backup
            </label>
          )}
        </div>
        <div class="for-backup-address">
          <label for="backup">Backup server's IP</label>
          <input id="backup" name="backup" value={backup} placeholder="10.0.0.2" readonly={pinned.backup} aria-invalid={errors.backup ? "true" : undefined} />
          <FieldError errors={errors} field="backup" />
          {pinned.backup ? pinnedNote("--backup") : <p class="reason for-main-only">Or add it later with Add Backup server on the Machines panel.</p>}
        </div>
        {everythingPinned ? null : (
          <>
            <button type="submit" class="primary for-client">Connect</button>
            <button type="submit" class="primary for-other">Save</button>
          </>
        )}
        <Saved message={props.saved} />
      </form>
    </section>
  );
}

export function KeySection(props: { view: SetupView; errors?: FieldErrors; saved?: string }) {
  const { view } = props;
  const errors = props.errors ?? {};
  return (
    <section id="key-section" class="card">
      <h2>Network key</h2>
      <p>
        All machines of one network have the same key.{" "}
        {view.keyFingerprint ? (
          <>
            Fingerprint: <code data-testid="key-fingerprint">{view.keyFingerprint}</code>
          </>
        ) : (
          "This machine has none yet."
        )}
      </p>
      {view.networkKey ? (
        <div class="key-copy">
          <label for="network-key">The network key, to paste on the other machines</label>
          <input id="network-key" type="password" readonly value={view.networkKey} data-testid="network-key" />
          <button type="button" data-copy="network-key">
            Copy
          </button>
        </div>
      ) : null}
      <FieldError errors={errors} field="action" />
      {view.pinned.key ? (
        <p class="pinned">Set by --key on the command line: change the file it names.</p>
      ) : (
        <>
          <form
            hx-post="/setup/key"
            hx-target="#key-section"
            hx-swap="outerHTML"
            method="post"
            action="/setup/key"
            hx-confirm={view.keyFingerprint ? `Replace the network key ${view.keyFingerprint}? Every other machine then needs the new key pasted on its setup page.` : undefined}
          >
            <input type="hidden" name="action" value="generate" />
            <input type="hidden" name="replaces" value={view.keyFingerprint ?? ""} />
            <button type="submit">Generate a new key here</button>
          </form>
          <form hx-post="/setup/key" hx-target="#key-section" hx-swap="outerHTML" method="post" action="/setup/key">
            <input type="hidden" name="action" value="paste" />
            <label for="key">or paste the key from the main server</label>
            <input id="key" name="key" autocomplete="off" aria-invalid={errors.key ? "true" : undefined} />
            <FieldError errors={errors} field="key" />
            <button type="submit">Use this key</button>
          </form>
        </>
      )}
      <Saved message={props.saved} />
    </section>
  );
}

/** The main's failback; always present (maybe empty) so a role saved as main shows it on the next page load. */
export function FailbackSection(props: { view: SetupView; errors?: FieldErrors; saved?: string; outOfBand?: boolean }) {
  const { failback, pinned } = props.view;
  const oob = props.outOfBand ? "true" : undefined;
  if (failback === null) return <div id="failback-section" hx-swap-oob={oob}></div>;
  const choice = (value: "auto" | "manual", label: string, hint: string) => (
    <div class="role-choice">
      <input type="radio" id={`failback-${value}`} name="failback" value={value} checked={failback === value} disabled={pinned.failback} />
      <label for={`failback-${value}`}>{label}</label>
      <span class="reason">{hint}</span>
    </div>
  );
  return (
    <section id="failback-section" class="card" hx-swap-oob={oob}>
      <h2>Failback</h2>
      <form hx-post="/setup/failback" hx-target="#failback-section" hx-swap="outerHTML" method="post" action="/setup/failback">
        <fieldset>
          <legend>When this main server is back after the backup served</legend>
          {choice("auto", "Automatic", "It takes the network back as soon as it has caught up.")}
          {choice("manual", "Manual", "It waits until someone chooses Switch back on the Machines panel.")}
        </fieldset>
        <FieldError errors={props.errors ?? {}} field="failback" />
        {pinned.failback ? <p class="pinned">Set by --failback on the command line.</p> : <button type="submit">Save</button>}
        <Saved message={props.saved} />
      </form>
    </section>
  );
}

export function SetupPage(props: { view: SetupView }) {
  return (
    <Layout title="Setup" bar={props.view.bar} panel="setup">
      <h1>Set up this machine</h1>
      <LicenseSection view={props.view} />
      <KeySection view={props.view} />
      <RoleSection view={props.view} />
      <FailbackSection view={props.view} />
    </Layout>
  );
}
