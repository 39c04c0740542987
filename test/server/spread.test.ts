import { afterEach, describe, expect, it, vi } from 'vitest';
import { spreadOver } from '../../server/spread.ts';

afterEach(() => {
  vi.useRealTimers();
});

describe('spreadOver', () => {
  it('acts on every item at once without a window', () => {
    const done: number[] = [];
    spreadOver([1, 2, 3], 0, (n) => done.push(n));
    expect(done).toEqual([1, 2, 3]);
  });

  it('spreads many items in even slices over the window, the first slice at once', () => {
    vi.useFakeTimers();
    const done: number[] = [];
    spreadOver(
      Array.from({ length: 1000 }, (_, i) => i),
      1000,
      (n) => done.push(n),
    );
    expect(done).toHaveLength(50);
    vi.advanceTimersByTime(500);
    expect(done).toHaveLength(550);
    vi.advanceTimersByTime(450);
    expect(done).toHaveLength(1000);
    expect(done).toEqual([...done].sort((a, b) => a - b));
  });

  it('spreads a few items over the whole window, one per slice', () => {
    vi.useFakeTimers();
    const done: string[] = [];
    spreadOver(['a', 'b', 'c', 'd'], 2000, (s) => done.push(s));
    expect(done).toEqual(['a']);
    vi.advanceTimersByTime(499);
    expect(done).toEqual(['a']);
    vi.advanceTimersByTime(1);
    expect(done).toEqual(['a', 'b']);
    vi.advanceTimersByTime(1000);
    expect(done).toEqual(['a', 'b', 'c', 'd']);
  });
});
