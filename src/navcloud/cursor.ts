/**
 * Shared by the sync server and its clients (seeding, smoke checks), so it lives with the protocol.
 * Cursors are opaque to clients but are nothing more than a store sequence number. Because import
 * keeps sequence numbers, a cursor handed out by one stack stays valid on the stack restored from
 * its backup. The prefix lets us tell a foreign or mangled string from a real cursor.
 */
const PREFIX = 'nc1.';

export function encodeCursor(seq: number): string {
  return Buffer.from(PREFIX + seq.toString(36)).toString('base64url');
}

const BASE64URL = /^[A-Za-z0-9_-]{6,32}$/;

/**
 * The sequence number behind a cursor, or undefined when the string is not one of ours. Runs for
 * every line of an import, so it checks the alphabet and length instead of re-encoding.
 */
export function decodeCursor(cursor: string): number | undefined {
  if (!BASE64URL.test(cursor)) return undefined;
  const text = Buffer.from(cursor, 'base64url').toString('latin1');
  if (!text.startsWith(PREFIX) || Math.ceil((text.length * 4) / 3) !== cursor.length) return undefined;
  const digits = text.slice(PREFIX.length);
  if (!/^[0-9a-z]{1,11}$/.test(digits)) return undefined;
  const seq = parseInt(digits, 36);
  return Number.isSafeInteger(seq) ? seq : undefined;
}
