import { describe, expect, it } from 'vitest';
import { decodeCursor, encodeCursor } from '../../src/navcloud/cursor.ts';

describe('cursors', () => {
  it('round-trip every sequence number, from the first to the largest safe one', () => {
    for (const seq of [0, 1, 35, 36, 1_000_000, 2 ** 40, Number.MAX_SAFE_INTEGER])
      expect(decodeCursor(encodeCursor(seq))).toBe(seq);
  });

  it('reject strings that are not ours', () => {
    const good = encodeCursor(12345);
    for (const bad of [
      '',
      'abc',
      `${good}=`,
      `${good}A`,
      good.slice(0, -1),
      'not-a-cursor',
      Buffer.from('xx1.abc').toString('base64url'),
      Buffer.from('nc1.ABC').toString('base64url'),
      Buffer.from('nc1.').toString('base64url'),
      'x'.repeat(64),
    ]) {
      expect(decodeCursor(bad), bad).toBeUndefined();
    }
  });
});
