/**
 * Pointing DNS back: the one undo of a flip, shared by `stackSwitch` (when the new stack fails
 * after the commit) and `rollback`. It moves the writer back first and DNS last, and reads DNS
 * before it unfences anything, so that at no point two stacks take writes of their own.
 *
 * With fencing tokens (patch fencing-tokens) it reads both fences first: the writer may have moved
 * already (only DNS is left), or never left `to` (nothing is copied back); else unfenced passes,
 * `from` fenced and copied under the fence, and the hand-over of workflows/hand-over.ts: `from`
 * commits to forward to `to`, then `to` opens. Runs started before it keep their steps:
 *
 *   read DNS -> undrain `to` -> fence `from` (lease) -> copy `from`'s writes to `to` -> hand over
 *   in one short call (renew `from`'s fence, and if it took nothing since the copy: unfence `to`,
 *   `from` forwards to `to`; else copy again) -> DNS back (compare-and-swap).
 *
 * A failure before the hand-over leaves `from` the writer. A failure after it, while DNS still
 * names `from`, moves the writer back to `from` the same way: the stack DNS names is the writer.
 * Once DNS accepted the change, `to` is the writer and `from` forwards to it.
 */
import { patched } from '@temporalio/workflow';
import { pointsTo } from '../src/cloud/dns-target.ts';
import { forwardsEveryRequestTo } from '../src/switch/roles.ts';
import type { DnsRecordState } from '../src/cloud/ports.ts';
import type { StackRef, StackState } from '../activities/types.ts';
import { dnsWait, fencing, handingOver, persistent, quick, streaming } from './activities.ts';
import { refusedWith, stop } from './failures.ts';
import { PATCHES } from './patches.ts';
import { handOver } from './hand-over.ts';

/** Copies after which a fence that keeps lapsing gives up. */
const MAX_COPIES = 3;

export interface PointBack {
  env: string;
  recordName: string;
  leaseSeconds: number;
  /** The stack clients are on now: it stops taking writes. */
  from: StackRef;
  /** The stack they go back to: it takes the writes again. */
  to: StackRef;
  /** Cursor on `from` where its writes not yet on `to` begin. */
  since: string;
  /** `to` was drained by the switch that left it: its nodes take clients again first. */
  undrain: boolean;
  /** Unfenced passes go on until one copies at most this many changes (catchUpFenceBelow). */
  catchUpFenceBelow: number;
  maxWritePauseSeconds: number;
}

/** How far pointing back got: the caller's own clean-up depends on it. */
export interface PointBackProgress {
  /** DNS sent clients to `from` when pointing back began. */
  dnsOnFrom: boolean;
  undrained: boolean;
  /** `to` takes writes (and `from` forwards to it, or is about to); false again if the writer went back. */
  writerMoved: boolean;
  /** DNS points to `to` (it did already, or the change was accepted). */
  dnsBack: boolean;
}

export function startPointingBack(): PointBackProgress {
  return { dnsOnFrom: false, undrained: false, writerMoved: false, dnsBack: false };
}

export async function pointDnsBack(
  back: PointBack,
  say: (details: string) => void,
  progress: PointBackProgress,
): Promise<void> {
  const withTokens = patched(PATCHES.fencingTokens);
  const dns = await whereDnsPoints(back, progress);
  if (withTokens) return pointBackWithTokens(back, dns, say, progress);
  const inOneCall = patched(PATCHES.handOverInOneCall);
  const moved = { copiedTo: back.since };
  await writerThenDns(back, dns, say, progress, {
    moveWriter: () =>
      inOneCall ? handOverFromCopy(back, say, progress, moved) : handOverInTwoCalls(back, say, progress, moved),
    writerFollowsDns: () => patched(PATCHES.writerFollowsDns),
    moveWriterBack: () => moveWriterBack(back, moved.copiedTo, say, progress, inOneCall),
  });
}

/** Where DNS sends clients as pointing back begins: to `from` or to `to`, else nothing is touched. */
interface WhereDns {
  record: DnsRecordState | null | undefined;
  onFrom: boolean;
  onTo: boolean;
}

/** Reads DNS before anything is unfenced; stops when it names neither stack. */
async function whereDnsPoints(back: PointBack, progress: PointBackProgress): Promise<WhereDns> {
  const { env, from, to } = back;
  const record = await persistent.readDns(env);
  const onFrom = pointsTo(record, { name: from.name, dnsTarget: from.outputs.dnsTarget });
  const onTo = pointsTo(record, { name: to.name, dnsTarget: to.outputs.dnsTarget });
  progress.dnsOnFrom = onFrom;
  if (!onFrom && !onTo) {
    throw stop(
      'DnsMoved',
      `${back.recordName} points to ${record?.stack || 'nothing'}, neither ${from.name} nor ${to.name}: nothing was unfenced or switched`,
    );
  }
  return { record, onFrom, onTo };
}

/**
 * Moves the writer, then DNS unless it points to `to` already (one compare-and-swap). When that
 * fails after the writer moved and DNS still names `from` (a change applied whose answer was lost
 * moved it all the same: DNS is read first), the writer goes back there, so that the stack DNS
 * names holds every write.
 */
async function writerThenDns(
  back: PointBack,
  dns: WhereDns,
  say: (details: string) => void,
  progress: PointBackProgress,
  steps: { moveWriter: () => Promise<void>; writerFollowsDns: () => boolean; moveWriterBack: () => Promise<void> },
): Promise<void> {
  const { env, to } = back;
  try {
    await steps.moveWriter();
    if (!dns.onTo) {
      say(`pointing ${back.recordName} back to ${to.name}`);
      const switched = await persistent.switchDns({
        env,
        expected: dns.record,
        stack: to.name,
        target: to.outputs.dnsTarget,
      });
      progress.dnsBack = true;
      if (switched.changeId) await dnsWait.waitDnsInSync({ env, changeId: switched.changeId });
    }
    progress.dnsBack = true;
  } catch (err) {
    if (progress.writerMoved && !progress.dnsBack && steps.writerFollowsDns()) {
      const now = await persistent.readDns(env);
      if (pointsTo(now, { name: to.name, dnsTarget: to.outputs.dnsTarget })) progress.dnsBack = true;
      else await steps.moveWriterBack();
    }
    throw err;
  }
}

/**
 * `to` undrained first, `from` fenced, its writes copied to `to`, then one short `handOver` call
 * (renew `from`, unfence `to`, `from` forwards to `to`): no pause of the workflow lies between
 * the unfence and the forward. A hand-over refused because `from` took writes since the copy
 * (its lease lapsed) copies again.
 */
async function handOverFromCopy(
  back: PointBack,
  say: (details: string) => void,
  progress: PointBackProgress,
  moved: { copiedTo: string },
): Promise<void> {
  const { env, from, to } = back;
  if (back.undrain) {
    progress.undrained = true;
    await persistent.undrainStack({ env, adminUrl: to.outputs.adminUrl, nodes: to.outputs.nodes });
  }
  say(`fencing ${from.name} and copying the writes it took back to ${to.name}`);
  await copyAndHandOver(env, from, to, back.since, back.leaseSeconds, (copiedTo) => {
    moved.copiedTo = copiedTo;
    say(`${to.name} takes writes again; ${from.name} forwards to it`);
    progress.writerMoved = true;
  });
}

/** Fences `from`, copies its writes since `since` to `to` and hands the writer over; `handingOverAfter` hears where each copy ended. */
async function copyAndHandOver(
  env: string,
  from: StackRef,
  to: StackRef,
  since: string,
  leaseSeconds: number,
  handingOverAfter: (copiedTo: string) => void = () => undefined,
): Promise<void> {
  await persistent.fenceStack({ env, adminUrl: from.outputs.adminUrl, leaseSeconds });
  for (let copies = 1; ; copies += 1) {
    const copy = await streaming.copyChanges({
      env,
      fromAdminUrl: from.outputs.adminUrl,
      toAdminUrl: to.outputs.adminUrl,
      since,
      renewFenceSeconds: leaseSeconds,
    });
    handingOverAfter(copy.cursor);
    try {
      await handingOver(leaseSeconds).handOver({
        env,
        from: from.outputs.adminUrl,
        to: to.outputs.adminUrl,
        toEndpoint: to.outputs.endpoint,
        cursor: copy.cursor,
        leaseSeconds,
      });
      return;
    } catch (err) {
      if (!refusedWith(err, 'FenceLapsed')) throw err;
      if (copies >= MAX_COPIES)
        throw stop(
          'FenceLapsed',
          `${from.name}'s fence lapsed ${copies} times while its writes were copied to ${to.name}`,
        );
      since = copy.cursor;
    }
  }
}

/** How runs started before patch hand-over-in-one-call move the writer: an unfence and a forward, two calls. */
async function handOverInTwoCalls(
  back: PointBack,
  say: (details: string) => void,
  progress: PointBackProgress,
  moved: { copiedTo: string },
): Promise<void> {
  const { env, from, to, leaseSeconds } = back;
  say(`fencing ${from.name} and copying the writes it took back to ${to.name}`);
  await persistent.fenceStack({ env, adminUrl: from.outputs.adminUrl, leaseSeconds });
  let since = back.since;
  for (let copies = 1; ; copies += 1) {
    const copy = await streaming.copyChanges({
      env,
      fromAdminUrl: from.outputs.adminUrl,
      toAdminUrl: to.outputs.adminUrl,
      since,
      renewFenceSeconds: leaseSeconds,
    });
    moved.copiedTo = copy.cursor;
    // Renewing tells whether the fence held: a lapsed one took writes past what was copied.
    const renewed = await persistent.fenceStack({ env, adminUrl: from.outputs.adminUrl, leaseSeconds });
    if (renewed.mode === 'forwarding' || renewed.cursor === copy.cursor) break;
    if (copies >= MAX_COPIES)
      throw stop('FenceLapsed', `${from.name}'s fence lapsed ${copies} times while its writes were copied back`);
    since = copy.cursor;
  }

  if (back.undrain) {
    progress.undrained = true;
    await persistent.undrainStack({ env, adminUrl: to.outputs.adminUrl, nodes: to.outputs.nodes });
  }
  say(`${to.name} takes writes again; ${from.name} forwards to it`);
  progress.writerMoved = true;
  await persistent.unfenceStack({ env, adminUrl: to.outputs.adminUrl });
  await persistent.forwardStack({
    env,
    adminUrl: from.outputs.adminUrl,
    to: to.outputs.endpoint,
    cursor: moved.copiedTo,
    leaseSeconds,
  });
}

/** The writer returns from `to` to `from` (DNS never left `from`): `to`'s writes since it took over are copied back. */
async function moveWriterBack(
  back: PointBack,
  since: string,
  say: (details: string) => void,
  progress: PointBackProgress,
  inOneCall: boolean,
): Promise<void> {
  const { env, from, to, leaseSeconds } = back;
  say(`DNS still names ${from.name}: the writes go back to it from ${to.name}`);
  if (inOneCall) {
    await copyAndHandOver(env, to, from, since, leaseSeconds);
  } else {
    await persistent.fenceStack({ env, adminUrl: to.outputs.adminUrl, leaseSeconds });
    const copy = await streaming.copyChanges({
      env,
      fromAdminUrl: to.outputs.adminUrl,
      toAdminUrl: from.outputs.adminUrl,
      since,
      renewFenceSeconds: leaseSeconds,
    });
    await persistent.unfenceStack({ env, adminUrl: from.outputs.adminUrl });
    await persistent.forwardStack({
      env,
      adminUrl: to.outputs.adminUrl,
      to: from.outputs.endpoint,
      cursor: copy.cursor,
      leaseSeconds,
    });
  }
  progress.writerMoved = false;
}

const forwardsTo = (state: StackState, stack: StackRef) =>
  forwardsEveryRequestTo({ mode: state.fence?.mode, forwardTo: state.forwardTo }, stack);

/**
 * Pointing DNS back with fencing tokens. What the two stacks' fences say decides what is left to
 * do: `from` forwarding to `to` already means the writer moved (an earlier hand-over, or a run
 * that died after its commit), so only `to` may have to open and DNS to move; `to` not forwarding
 * to `from` means the writer never left it (the flip's commit was refused): nothing is copied
 * back, its fence is released.
 */
async function pointBackWithTokens(
  back: PointBack,
  dns: WhereDns,
  say: (details: string) => void,
  progress: PointBackProgress,
): Promise<void> {
  const { env, from, to } = back;
  const limits = {
    leaseSeconds: back.leaseSeconds,
    maxWritePauseSeconds: back.maxWritePauseSeconds,
    fenceBelow: back.catchUpFenceBelow,
  };
  const fromNow = await quick.stackState({ env, adminUrl: from.outputs.adminUrl });
  const toNow = await quick.stackState({ env, adminUrl: to.outputs.adminUrl });
  let copiedTo = back.since;
  await writerThenDns(back, dns, say, progress, {
    moveWriter: async () => {
      if (forwardsTo(fromNow, to)) {
        say(`${from.name} forwards to ${to.name} already`);
        // A hand-over that committed and never opened `to`: opening it finishes that hand-over.
        if (forwardsTo(toNow, from))
          await fencing.releaseFence({ env, adminUrl: to.outputs.adminUrl, expected: toNow.fence! });
      } else if (!forwardsTo(toNow, from)) {
        if (dns.onFrom)
          throw stop(
            'NotForwarding',
            `${to.name} does not forward to ${from.name}, which DNS names: it is not where ${from.name}'s writes came from`,
          );
        say(`${to.name} never handed its writes to ${from.name}: nothing to copy back`);
        if (toNow.fence?.mode === 'fenced')
          await fencing.releaseFence({ env, adminUrl: to.outputs.adminUrl, expected: toNow.fence });
        return;
      } else {
        if (back.undrain) {
          progress.undrained = true;
          await persistent.undrainStack({ env, adminUrl: to.outputs.adminUrl, nodes: to.outputs.nodes });
        }
        say(`copying the writes ${from.name} took back to ${to.name}, then fencing it and handing the writer over`);
        copiedTo = await handOver(env, from, to, back.since, limits);
        say(`${to.name} takes writes again; ${from.name} forwards to it`);
      }
      progress.writerMoved = true;
    },
    writerFollowsDns: () => true,
    moveWriterBack: async () => {
      say(`DNS still names ${from.name}: the writes go back to it from ${to.name}`);
      await handOver(env, to, from, copiedTo, limits);
      progress.writerMoved = false;
    },
  });
}
