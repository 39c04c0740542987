/**
 * Pointing DNS back: the one undo of a flip, shared by `stackSwitch` (when the new stack fails
 * after the commit) and `rollback`. It moves the writer back first and DNS last, and reads DNS
 * before it unfences anything, so that at no point two stacks take writes of their own:
 *
 *   read DNS -> fence `from` (lease) -> copy `from`'s writes to `to` until the fence is seen to
 *   hold -> undrain `to` -> unfence `to` -> `from` forwards to `to` -> DNS back (compare-and-swap).
 *
 * A failure before `to` is unfenced leaves `from` the writer (its fence lapses by itself). A
 * failure after it, while DNS still names `from`, moves the writer back to `from` (`to` fenced,
 * its writes copied back, `to` forwarding to `from`): the stack DNS names is the writer. Once DNS
 * accepted the change, `to` is the writer and `from` forwards to it.
 */
import { patched } from '@temporalio/workflow';
import { pointsTo } from '../src/cloud/dns-target.ts';
import type { StackRef } from '../activities/types.ts';
import { dnsWait, persistent, streaming } from './activities.ts';
import { stop } from './failures.ts';
import { PATCHES } from './patches.ts';

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

export async function pointDnsBack(back: PointBack, say: (details: string) => void, progress: PointBackProgress): Promise<void> {
  const { env, from, to, leaseSeconds } = back;
  const record = await persistent.readDns(env);
  const onFrom = pointsTo(record, { name: from.name, dnsTarget: from.outputs.dnsTarget });
  const onTo = pointsTo(record, { name: to.name, dnsTarget: to.outputs.dnsTarget });
  progress.dnsOnFrom = onFrom;
  if (!onFrom && !onTo) {
    throw stop('DnsMoved', `${back.recordName} points to ${record?.stack || 'nothing'}, neither ${from.name} nor ${to.name}: nothing was unfenced or switched`);
  }

  say(`fencing ${from.name} and copying the writes it took back to ${to.name}`);
  await persistent.fenceStack({ env, adminUrl: from.outputs.adminUrl, leaseSeconds });
  let since = back.since;
  let copiedTo = since;
  for (let copies = 1; ; copies += 1) {
    const copy = await streaming.copyChanges({
      env, fromAdminUrl: from.outputs.adminUrl, toAdminUrl: to.outputs.adminUrl, since, renewFenceSeconds: leaseSeconds,
    });
    copiedTo = copy.cursor;
    // Renewing tells whether the fence held: a lapsed one took writes past what was copied.
    const renewed = await persistent.fenceStack({ env, adminUrl: from.outputs.adminUrl, leaseSeconds });
    if (renewed.mode === 'forwarding' || renewed.cursor === copy.cursor) break;
    if (copies >= MAX_COPIES) throw stop('FenceLapsed', `${from.name}'s fence lapsed ${copies} times while its writes were copied back`);
    since = copy.cursor;
  }

  if (back.undrain) {
    progress.undrained = true;
    await persistent.undrainStack({ env, adminUrl: to.outputs.adminUrl, nodes: to.outputs.nodes });
  }
  say(`${to.name} takes writes again; ${from.name} forwards to it`);
  progress.writerMoved = true;
  try {
    await persistent.unfenceStack({ env, adminUrl: to.outputs.adminUrl });
    await persistent.forwardStack({ env, adminUrl: from.outputs.adminUrl, to: to.outputs.endpoint, cursor: copiedTo, leaseSeconds });
    if (!onTo) {
      say(`pointing ${back.recordName} back to ${to.name}`);
      const switched = await persistent.switchDns({ env, expected: record, stack: to.name, target: to.outputs.dnsTarget });
      progress.dnsBack = true;
      if (switched.changeId) await dnsWait.waitDnsInSync({ env, changeId: switched.changeId });
    }
    progress.dnsBack = true;
  } catch (err) {
    if (!progress.dnsBack && patched(PATCHES.writerFollowsDns)) {
      // A change applied whose answer was lost moved DNS all the same: read it before moving anything.
      const now = await persistent.readDns(env);
      if (pointsTo(now, { name: to.name, dnsTarget: to.outputs.dnsTarget })) progress.dnsBack = true;
      // DNS still sends clients to `from`: the writer goes back there, so that the stack DNS names holds every write.
      else await moveWriterBack(back, copiedTo, say, progress);
    }
    throw err;
  }
}

/** The writer returns from `to` to `from` (DNS never left `from`): `to`'s writes since it took over are copied back. */
async function moveWriterBack(back: PointBack, since: string, say: (details: string) => void, progress: PointBackProgress): Promise<void> {
  const { env, from, to, leaseSeconds } = back;
  say(`DNS still names ${from.name}: the writes go back to it from ${to.name}`);
  await persistent.fenceStack({ env, adminUrl: to.outputs.adminUrl, leaseSeconds });
  const copy = await streaming.copyChanges({
    env, fromAdminUrl: to.outputs.adminUrl, toAdminUrl: from.outputs.adminUrl, since, renewFenceSeconds: leaseSeconds,
  });
  await persistent.unfenceStack({ env, adminUrl: from.outputs.adminUrl });
  await persistent.forwardStack({ env, adminUrl: to.outputs.adminUrl, to: from.outputs.endpoint, cursor: copy.cursor, leaseSeconds });
  progress.writerMoved = false;
}
