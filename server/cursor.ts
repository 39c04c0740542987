/**
 * Cursors are opaque to clients but are nothing more than a store sequence number. Because import
 * keeps sequence numbers, a cursor handed out by one stack stays valid on the stack restored from
 * its backup. The prefix lets us tell a foreign or mangled string from a real cursor.
 */
const PREFIX = 'nc1.';

export function encodeCursor(seq: number): string {
  return Buffer.from(PREFIX + seq.toString(36)).toString('base64url');
}

/** The sequence number behind a cursor, or undefined when the string is not one of ours. */
export function decodeCursor(cursor: string): number | undefined {
  if (cursor.length === 0 || cursor.length > 32) return undefined;
  const text = Buffer.from(cursor, 'base64url').toString('latin1');
  if (!text.startsWith(PREFIX)) return undefined;
  const digits = text.slice(PREFIX.length);
  if (!/^[0-9a-z]{1,11}$/.test(digits)) return undefined;
  const seq = parseInt(digits, 36);
  if (!Number.isSafeInteger(seq) || encodeCursor(seq) !== cursor) return undefined;
  return seq;
}
