/**
 * Moving the writer with fencing tokens (patch fencing-tokens, docs/switch-protocol.md): the
 * flip's fence and copy, and the hand-over pointing back uses. Every change of a fence names the
 * epoch it expects, so none of them can act on a state that moved on.
 *
 *   unfenced catch-up passes -> take `from`'s fence -> copy under it, renewing it, for at most
 *   maxWritePauseSeconds -> hand over: `from` commits to forward to `to` (only if nothing was
 *   acknowledged past the copy), and only then does `to`, which forwards to `from` until then, open
 *
 * Between the commit and the opening the two stacks forward to each other and writes wait; they
 * never both take writes, whatever pauses, dies, is terminated or runs out of retries.
 */
import type { CopyResult, HeldFence, StackRef } from '../activities/types.ts';
import { patched } from '@temporalio/workflow';
import { fencing, streaming } from './activities.ts';
import { PATCHES } from './patches.ts';
import { refusedWith, stop } from './failures.ts';

/** Catch-up passes before fencing no matter how busy the stack still is. */
const MAX_CATCH_UP_PASSES = 5;
/** Fenced copies after which a fence that keeps lapsing gives up. */
export const MAX_FENCED_COPIES = 3;

/** The fence lapsed (its stack took writes again) or the copy under it is behind: fence and copy again. */
export const lapsed = (err: unknown) => refusedWith(err, 'FenceLapsed') || refusedWith(err, 'CopyBehind');

/** How long a fence is held and may hold writes. */
export interface FenceLimits {
  leaseSeconds: number;
  maxWritePauseSeconds: number;
}

/** Where the catch-up passes ended, and what each copied. */
export interface CaughtUp {
  cursor: string;
  passes: CopyResult[];
}

/** Copies `from`'s writes since `since` into `to`, unfenced, pass after pass until a pass copies at most `fenceBelow`. */
export async function copyUntilFew(
  env: string,
  from: StackRef,
  to: StackRef,
  since: string,
  fenceBelow: number,
  passDone: (copy: CopyResult, pass: number) => void = () => undefined,
): Promise<CaughtUp> {
  const passes: CopyResult[] = [];
  let cursor = since;
  for (let pass = 1; pass <= MAX_CATCH_UP_PASSES; pass += 1) {
    const copy = await streaming.copyChanges({
      env,
      fromAdminUrl: from.outputs.adminUrl,
      toAdminUrl: to.outputs.adminUrl,
      since: cursor,
    });
    passes.push(copy);
    cursor = copy.cursor;
    passDone(copy, pass);
    if (copy.copied <= fenceBelow) break;
  }
  return { cursor, passes };
}

/** A fence this run took, and the copy made under it: where it ended and the fence as its last renewal left it. */
export interface FencedCopy {
  cursor: string;
  fence: HeldFence;
}

/** Takes `from`'s fence and copies its writes since `since` into `to` under it. The caller releases the fence if this fails. */
export async function fenceAndCopy(
  env: string,
  from: StackRef,
  to: StackRef,
  since: string,
  limits: FenceLimits,
  taken: (fence: HeldFence) => void = () => undefined,
): Promise<FencedCopy> {
  const fence = await fencing.takeFence({ env, adminUrl: from.outputs.adminUrl, leaseSeconds: limits.leaseSeconds });
  taken({ epoch: fence.epoch });
  const copy = await streaming.copyUnderFence({
    env,
    fromAdminUrl: from.outputs.adminUrl,
    toAdminUrl: to.outputs.adminUrl,
    since,
    fence: { epoch: fence.epoch },
    leaseSeconds: limits.leaseSeconds,
    writePauseLeftMs: limits.maxWritePauseSeconds * 1000,
    ...(patched(PATCHES.settleCaughtWrites) ? { fromNodes: from.outputs.nodes } : {}),
  });
  return { cursor: copy.cursor, fence: copy.fence };
}

/**
 * Hands the writer from `from` to `to` (which forwards to `from`): unfenced passes, then the
 * fence, the copy under it, and the hand-over. A fence that lapsed meanwhile (`from` took writes)
 * is taken and copied again. Answers where the last copy out of `from` ended.
 */
export async function handOver(
  env: string,
  from: StackRef,
  to: StackRef,
  since: string,
  limits: FenceLimits & { fenceBelow: number },
): Promise<string> {
  let cursor = (await copyUntilFew(env, from, to, since, limits.fenceBelow)).cursor;
  for (let copies = 1; ; copies += 1) {
    let fenced: FencedCopy;
    let held: HeldFence | undefined;
    try {
      fenced = await fenceAndCopy(env, from, to, cursor, limits, (fence) => (held = fence));
      await fencing.handOverWriter({
        env,
        from: from.outputs.adminUrl,
        fromEndpoint: from.outputs.endpoint,
        to: to.outputs.adminUrl,
        toEndpoint: to.outputs.endpoint,
        fence: fenced.fence,
        cursor: fenced.cursor,
        leaseSeconds: limits.leaseSeconds,
      });
      return fenced.cursor;
    } catch (err) {
      if (lapsed(err) && copies < MAX_FENCED_COPIES) continue;
      // The writer stays on `from`: it opens now rather than when its lease lapses (a fence that
      // cannot be released lapses by itself; one that committed stays committed).
      if (held)
        await fencing
          .releaseFence({ env, adminUrl: from.outputs.adminUrl, expected: { epoch: held.epoch, mode: 'fenced' } })
          .catch(() => undefined);
      if (lapsed(err))
        throw stop(
          'FenceLapsed',
          `${from.name}'s fence lapsed ${copies} times while its writes were copied to ${to.name}`,
        );
      throw err;
    }
  }
}
