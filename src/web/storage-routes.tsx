/** @jsxImportSource hono/jsx */
/**
 * The Synced storage panel's routes: the page, the show folder, Push Changes,
 * Pull and the Auto-Pull switch. Under htmx each form gets its card back;
 * without JavaScript a form that worked redirects to the page (303) and one
 * that failed gets the whole page with the reason beside the form. The
 * Host, password and Origin guards of app.tsx apply to all of them.
 */
import type { Context, Hono } from "hono";
import type { HtmlEscapedString } from "hono/utils/html";
import { z } from "zod";
import { AppError } from "../core/errors.ts";
import type { MachineStatus } from "../core/status.ts";
import type { LogEntry } from "../services/show-file-protocol.ts";
import type { FolderSyncView } from "../services/show-folder/folder-sync.ts";
import { FolderCard, PullControls, PushForm, StoragePage } from "./views/storage.tsx";
import { storageView as buildStorageView, type FormEcho, type StorageHistory, type StorageView } from "./view-models/storage-view.ts";

/** What the panel needs from the machine. */
export interface StorageControl {
  status(): MachineStatus;
  /** The show file's last revisions (null: no show file here, a stand-alone machine). */
  showFileHistory(limit: number): Promise<{ entries: LogEntry[]; readOnly: boolean } | null>;
  /** The show folder's state; null on a stand-alone machine. */
  folderSync(): FolderSyncView | null;
  showFolderPinned(): boolean;
  autoPullPinned(): boolean;
  /** Throws InvalidInput (field "folder") for a folder that cannot be the show folder. */
  setShowFolder(folder: string): void;
  setAutoPull(on: boolean): void;
  /** Start a job; throw an AppError (409) when it cannot start now. */
  startPush(comment: string): void;
  startPull(): void;
}

/** Revisions the Synced storage panel lists. */
export const STORAGE_HISTORY_LIMIT = 20;

export const showFolderFormSchema = z.object({
  folder: z
    .string({ message: "Type the folder's full path, such as /srv/show or D:\\show." })
    .trim()
    .min(1, "Type the folder's full path, such as /srv/show or D:\\show.")
    .max(4096, "That path is far too long."),
});

export const pushFormSchema = z.object({
  comment: z
    .string({ message: "Write a comment: what changed (everyone sees it in the history)." })
    .trim()
    .min(1, "Write a comment: what changed (everyone sees it in the history).")
    .max(1000, "Keep the comment under 1000 characters."),
});

export const autoPullFormSchema = z.object({ autoPull: z.enum(["on", "off"], { message: "Auto-Pull is either on or off." }) });

/** The view every part of the panel renders from; `history` as the page shows it on load. */
export function storageView(machine: StorageControl, history: StorageHistory = null): StorageView {
  return buildStorageView({ status: machine.status(), history, sync: machine.folderSync(), pinned: { folder: machine.showFolderPinned(), autoPull: machine.autoPullPinned() } });
}

/** The history asked now (a backup serving reads its own copy); the live stream then follows the node's. */
async function pageHistory(machine: StorageControl): Promise<StorageHistory> {
  try {
    return await machine.showFileHistory(STORAGE_HISTORY_LIMIT);
  } catch (error) {
    if (!(error instanceof AppError)) throw error;
    return { error: error.message };
  }
}

const isHtmx = (c: Context) => c.req.header("hx-request") === "true";
const typed = (body: Record<string, unknown>, field: string) => (typeof body[field] === "string" ? (body[field] as string) : "");
const firstIssue = (error: z.ZodError) => error.issues[0]!.message;

export function registerStorage(app: Hono, machine: StorageControl): void {
  app.get("/storage", async (c) => c.html(<StoragePage view={storageView(machine, await pageHistory(machine))} />));

  type Parts = { card: (view: StorageView) => HtmlEscapedString | Promise<HtmlEscapedString>; page: Partial<Record<"folder" | "push" | "pull", FormEcho>> };
  /** Under htmx the card; without JavaScript, a redirect when it worked or the page with the form's echo. */
  const answer = async (c: Context, status: 200 | 400 | 403 | 409, parts: Parts) => {
    if (isHtmx(c)) return c.html(parts.card(storageView(machine)), status);
    if (status === 200) return c.redirect("/storage", 303);
    return c.html(<StoragePage view={storageView(machine, await pageHistory(machine))} {...parts.page} />, status);
  };
  /** An AppError's status as one of the answers above (400 for bad input, 409 for "not now"). */
  const statusOf = (error: AppError) => (error.status === 400 || error.status === 403 ? error.status : 409) as 400 | 403 | 409;
  const folderParts = (e: FormEcho): Parts => ({ card: (v) => <FolderCard view={v} echo={e} />, page: { folder: e } });
  const pushParts = (e: FormEcho): Parts => ({ card: (v) => <PushForm view={v} echo={e} />, page: { push: e } });
  const pullParts = (e: FormEcho): Parts => ({ card: (v) => <PullControls view={v} echo={e} />, page: { pull: e } });

  /** Runs the machine's part; its AppError is the form's refusal, with what was typed kept. */
  const act = (c: Context, parts: (e: FormEcho) => Parts, run: () => void, saved: string, value?: string) => {
    try {
      run();
    } catch (error) {
      if (!(error instanceof AppError)) throw error;
      return answer(c, statusOf(error), parts({ value, error: error.message }));
    }
    return answer(c, 200, parts({ saved }));
  };

  app.post("/storage/folder", async (c) => {
    const body = await c.req.parseBody();
    const form = showFolderFormSchema.safeParse(body);
    if (!form.success) return answer(c, 400, folderParts({ value: typed(body, "folder"), error: firstIssue(form.error) }));
    return act(c, folderParts, () => machine.setShowFolder(form.data.folder), "Show folder saved: its changes are listed below.", form.data.folder);
  });

  app.post("/storage/push", async (c) => {
    const body = await c.req.parseBody();
    const form = pushFormSchema.safeParse(body);
    if (!form.success) return answer(c, 400, pushParts({ value: typed(body, "comment"), error: firstIssue(form.error) }));
    return act(c, pushParts, () => machine.startPush(form.data.comment), "Push started: its progress and result show under “Your changes to push”.", form.data.comment);
  });

  app.post("/storage/pull", (c) =>
    act(c, pullParts, () => machine.startPull(), "Pull started: its progress and result show under “Your changes to push”."),
  );

  app.post("/storage/auto-pull", async (c) => {
    const form = autoPullFormSchema.safeParse(await c.req.parseBody());
    if (!form.success) return answer(c, 400, pullParts({ error: firstIssue(form.error) }));
    const on = form.data.autoPull === "on";
    return act(c, pullParts, () => machine.setAutoPull(on), on ? "Auto-Pull is on." : "Auto-Pull is off.");
  });
}
