/**
 * The backups a main was paired with and removed (docs/design.md §Pairing,
 * "Clearing the backup"). A removed backup that missed the unpair message
 * (it was down, or the message was lost) still holds a confirmed pairing; hearing
 * nothing from its main, it would take over while the main serves. So the main
 * remembers it, answers its heartbeats with its own (which do not name it, so
 * the backup lets go: backup.ts hearMain), and forgets it once that machine's
 * heartbeat says it let go, or once it is paired again. The list survives a
 * restart (persistFormerPartners). Pure.
 */

/** Removed backups remembered at most; the oldest removed is forgotten first. A studio removes a few in a lifetime. */
export const MAX_FORMER_PARTNERS = 8;

/** `id` remembered as removed just now (newest last). */
export function rememberFormer(list: readonly string[], id: string): readonly string[] {
  return [...list.filter((x) => x !== id), id].slice(-MAX_FORMER_PARTNERS);
}

export function forgetFormer(list: readonly string[], id: string): readonly string[] {
  return list.includes(id) ? list.filter((x) => x !== id) : list;
}

/**
 * Whether a heartbeat is a removed backup's own: it names a former partner, is
 * sealed by that machine's key (a network-key holder speaking in its name gets
 * nothing, not even an answer), and speaks as a backup.
 */
export function fromFormerPartner(claim: { readonly id: string; readonly role: string }, sealedBy: string | null, former: readonly string[]): boolean {
  return sealedBy === claim.id && claim.role === "backup" && former.includes(claim.id);
}
