/**
 * Moving the writer with fencing tokens (patch fencing-tokens, docs/switch-protocol.md). Every
 * change of a fence names the epoch it expects, so none of them can act on a state that moved on.
 *
 *   unfenced catch-up passes -> take `from`'s fence -> copy under it, renewing it, for at most
 *   maxWritePauseSeconds -> hand over: `from` commits to forward to `to` (only if nothing was
 *   acknowledged past the copy), and only then does `to`, which forwards to `from` until then, open
 *
 * Between the commit and the opening the two stacks forward to each other and writes wait; they
 * never both take writes, whatever pauses, dies, is terminated or runs out of retries.
 */
import { pointsTo } from '../src/cloud/dns-target.ts';
import type { CopyResult, HeldFence, StackRef, StackState } from '../activities/types.ts';
import { dnsWait, fencing, persistent, quick, streaming } from './activities.ts';
import { refusedWith, stop } from './failures.ts';
import type { PointBack, PointBackProgress } from './point-back.ts';
import { workflowNow } from './clock.ts';

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
export async function copyUntilFew(env: string, from: StackRef, to: StackRef, since: string, fenceBelow: number,
  passDone: (copy: CopyResult, pass: number) => void = () => undefined): Promise<CaughtUp> {
  const passes: CopyResult[] = [];
  let cursor = since;
  for (let pass = 1; pass <= MAX_CATCH_UP_PASSES; pass += 1) {
    const copy = await streaming.copyChanges({ env, fromAdminUrl: from.outputs.adminUrl, toAdminUrl: to.outputs.adminUrl, since: cursor });
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
  /** Workflow time the fence was asked for: the write pause runs from here. */
  fencedAt: number;
}

/** Takes `from`'s fence and copies its writes since `since` into `to` under it. The caller releases the fence if this fails. */
export async function fenceAndCopy(env: string, from: StackRef, to: StackRef, since: string, limits: FenceLimits,
  taken: (fence: HeldFence) => void = () => undefined): Promise<FencedCopy> {
  const fencedAt = workflowNow();
  const fence = await fencing.takeFence({ env, adminUrl: from.outputs.adminUrl, leaseSeconds: limits.leaseSeconds });
  taken({ epoch: fence.epoch });
  const copy = await streaming.copyUnderFence({
    env, fromAdminUrl: from.outputs.adminUrl, toAdminUrl: to.outputs.adminUrl, since, fence: { epoch: fence.epoch },
    leaseSeconds: limits.leaseSeconds, writePauseLeftMs: limits.maxWritePauseSeconds * 1000,
  });
  return { cursor: copy.cursor, fence: copy.fence, fencedAt };
}

/**
 * Hands the writer from `from` to `to` (which forwards to `from`): unfenced passes, then the
 * fence, the copy under it, and the hand-over. A fence that lapsed meanwhile (`from` took writes)
 * is taken and copied again. Answers where the last copy out of `from` ended.
 */
export async function handOver(env: string, from: StackRef, to: StackRef, since: string, limits: FenceLimits & { fenceBelow: number }): Promise<string> {
  let cursor = (await copyUntilFew(env, from, to, since, limits.fenceBelow)).cursor;
  for (let copies = 1; ; copies += 1) {
    let fenced: FencedCopy;
    let held: HeldFence | undefined;
    try {
      fenced = await fenceAndCopy(env, from, to, cursor, limits, (fence) => (held = fence));
      await fencing.handOverWriter({
        env, from: from.outputs.adminUrl, fromEndpoint: from.outputs.endpoint, to: to.outputs.adminUrl, toEndpoint: to.outputs.endpoint,
        fence: fenced.fence, cursor: fenced.cursor, leaseSeconds: limits.leaseSeconds,
      });
      return fenced.cursor;
    } catch (err) {
      if (lapsed(err) && copies < MAX_FENCED_COPIES) continue;
      // The writer stays on `from`: it opens now rather than when its lease lapses (a fence that
      // cannot be released lapses by itself; one that committed stays committed).
      if (held) await fencing.releaseFence({ env, adminUrl: from.outputs.adminUrl, expected: { epoch: held.epoch, mode: 'fenced' } }).catch(() => undefined);
      if (lapsed(err)) throw stop('FenceLapsed', `${from.name}'s fence lapsed ${copies} times while its writes were copied to ${to.name}`);
      throw err;
    }
  }
}

const forwardsTo = (state: StackState, stack: StackRef) => state.fence?.mode === 'forwarding' && state.forwardTo === stack.outputs.endpoint;

/**
 * Pointing DNS back with fencing tokens. What the two stacks' fences say decides what is left to
 * do: `from` forwarding to `to` already means the writer moved (an earlier hand-over, or a run
 * that died after its commit), so only `to` may have to open and DNS to move; `to` not forwarding
 * to `from` means the writer never left it (the flip's commit was refused): nothing is copied
 * back, its fence is released.
 */
export async function pointBackWithTokens(back: PointBack, say: (details: string) => void, progress: PointBackProgress): Promise<void> {
  const { env, from, to } = back;
  const limits = { leaseSeconds: back.leaseSeconds, maxWritePauseSeconds: back.maxWritePauseSeconds, fenceBelow: back.catchUpFenceBelow };
  const record = await persistent.readDns(env);
  const onFrom = pointsTo(record, { name: from.name, dnsTarget: from.outputs.dnsTarget });
  const onTo = pointsTo(record, { name: to.name, dnsTarget: to.outputs.dnsTarget });
  progress.dnsOnFrom = onFrom;
  if (!onFrom && !onTo) {
    throw stop('DnsMoved', `${back.recordName} points to ${record?.stack || 'nothing'}, neither ${from.name} nor ${to.name}: nothing was unfenced or switched`);
  }
  const fromNow = await quick.stackState({ env, adminUrl: from.outputs.adminUrl });
  const toNow = await quick.stackState({ env, adminUrl: to.outputs.adminUrl });
  let copiedTo = back.since;
  try {
    if (forwardsTo(fromNow, to)) {
      say(`${from.name} forwards to ${to.name} already`);
      // A hand-over that committed and never opened `to`: opening it finishes that hand-over.
      if (forwardsTo(toNow, from)) await fencing.releaseFence({ env, adminUrl: to.outputs.adminUrl, expected: toNow.fence! });
      progress.writerMoved = true;
    } else if (!forwardsTo(toNow, from)) {
      if (onFrom) throw stop('NotForwarding', `${to.name} does not forward to ${from.name}, which DNS names: it is not where ${from.name}'s writes came from`);
      say(`${to.name} never handed its writes to ${from.name}: nothing to copy back`);
      if (toNow.fence?.mode === 'fenced') await fencing.releaseFence({ env, adminUrl: to.outputs.adminUrl, expected: toNow.fence });
      progress.dnsBack = true;
      return;
    } else {
      if (back.undrain) {
        progress.undrained = true;
        await persistent.undrainStack({ env, adminUrl: to.outputs.adminUrl, nodes: to.outputs.nodes });
      }
      say(`copying the writes ${from.name} took back to ${to.name}, then fencing it and handing the writer over`);
      copiedTo = await handOver(env, from, to, back.since, limits);
      say(`${to.name} takes writes again; ${from.name} forwards to it`);
      progress.writerMoved = true;
    }
    if (!onTo) {
      say(`pointing ${back.recordName} back to ${to.name}`);
      const switched = await persistent.switchDns({ env, expected: record, stack: to.name, target: to.outputs.dnsTarget });
      progress.dnsBack = true;
      if (switched.changeId) await dnsWait.waitDnsInSync({ env, changeId: switched.changeId });
    }
    progress.dnsBack = true;
  } catch (err) {
    if (progress.writerMoved && !progress.dnsBack) {
      // A change applied whose answer was lost moved DNS all the same: read it before moving anything.
      const now = await persistent.readDns(env);
      if (pointsTo(now, { name: to.name, dnsTarget: to.outputs.dnsTarget })) {
        progress.dnsBack = true;
      } else {
        // DNS still sends clients to `from`: the writer goes back there, so that the stack DNS names holds every write.
        say(`DNS still names ${from.name}: the writes go back to it from ${to.name}`);
        await handOver(env, to, from, copiedTo, limits);
        progress.writerMoved = false;
      }
    }
    throw err;
  }
}
