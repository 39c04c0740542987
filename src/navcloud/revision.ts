/**
 * Shared by the sync server's stores and the clients that compare two stacks' items, so it lives
 * with the protocol. Revisions are `<generation>-<nonce>`: the generation orders revisions of one item, so import can
 * tell an older copy from a newer one whichever store wrote it.
 */
import { randomBytes } from 'node:crypto';

export function nextRevision(previous: string | undefined): string {
  return `${previous ? generation(previous) + 1 : 1}-${randomBytes(6).toString('hex')}`;
}

export function generation(rev: string): number {
  const dash = rev.indexOf('-');
  const value = Number(dash < 0 ? rev : rev.slice(0, dash));
  return Number.isSafeInteger(value) ? value : 0;
}

/**
 * Whether an import of `incoming` leaves `held` as it is: the same revision, or a later generation.
 * Two revisions of one generation were written apart (two stacks, one missing the other's write):
 * the copy's source is the writer, so its revision replaces the one held.
 */
export function holdsAtLeast(held: string, incoming: string): boolean {
  return held === incoming || generation(held) > generation(incoming);
}

/** Negative, zero or positive as `a` is older than, the same as or newer than `b`; one generation by nonce, to settle siblings alike everywhere. */
export function compareRevisions(a: string, b: string): number {
  return generation(a) - generation(b) || (a < b ? -1 : a > b ? 1 : 0);
}
