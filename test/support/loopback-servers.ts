/** Servers a test starts on loopback for itself: addresses no other test file uses, and stopped after the test. */
import { afterEach } from 'vitest';

/** Loopback addresses of their own, so parallel test files never share one. */
export function loopbackAddresses(count: number): string[] {
  const [b, c] = [10 + Math.floor(Math.random() * 200), Math.floor(Math.random() * 250)];
  return Array.from({ length: count }, (_, i) => `127.${b}.${c}.${i + 1}`);
}

/**
 * What a test pushes here runs after it, last pushed first: what started later (a fleet) uses what
 * started before it (a stack, DNS), so it stops first.
 */
export function cleanupsAfterEach(): Array<() => Promise<unknown>> {
  const cleanups: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });
  return cleanups;
}
