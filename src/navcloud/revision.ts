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

/** Negative, zero or positive as `a` is older than, the same as or newer than `b`. */
export function compareRevisions(a: string, b: string): number {
  return generation(a) - generation(b) || (a < b ? -1 : a > b ? 1 : 0);
}
