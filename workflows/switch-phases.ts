/**
 * The phases of `stackSwitch`, one function each, in runbook order (docs/switch-protocol.md).
 * A step that changes the world registers what undoes it right next to the change.
 */
import { CancellationScope, condition, patched, sleep, workflowInfo } from '@temporalio/workflow';
import { otherColour, type Colour, type DnsRecordState } from '../src/cloud/ports.ts';
import { stacksToDelete } from '../src/switch/roles.ts';
import { colourOfStackName, stackName } from '../src/switch/stack-name.ts';
import {
  approveCommandFor,
  DEFAULT_FENCE_LEASE_SECONDS,
  DEFAULT_MAX_WRITE_PAUSE_SECONDS,
} from '../src/switch/contract.ts';
import type { BackupSummary, CopyResult, HeldFence, StackRef, SwitchSettings } from '../activities/types.ts';
import { dnsWait, fencing, persistent, provisioning, quick, smoke, streaming } from './activities.ts';
import { pointDnsBack, startPointingBack, type PointBack } from './point-back.ts';
import { copyUntilFew, fenceAndCopy, lapsed, MAX_FENCED_COPIES, type CaughtUp } from './hand-over.ts';
import type { SwitchRun, Undo } from './switch-run.ts';
import { reasonOf, refusedWith, stop } from './failures.ts';
import { PATCHES } from './patches.ts';
import { workflowNow } from './clock.ts';

/** The first look at restore progress; each next one waits twice as long, up to the longest. */
export const RESTORE_LOOK_FIRST_MS = 5_000;
const RESTORE_LOOK_LONGEST_MS = 5 * 60_000;
/** Verification looks at the new stack this often, or less often so that a watch takes at most VERIFY_LOOKS looks. */
const VERIFY_EVERY_MS = 10_000;
const VERIFY_LOOKS = 240;
/** Looks at the draining stack's activity, at most. */
const DRAIN_LOOKS = 120;
/** A stack with fewer requests per second than this is as good as idle. */
const NEAR_ZERO_RPS = 0.5;

export interface Planned {
  settings: SwitchSettings & { fenceLeaseSeconds: number; maxWritePauseSeconds: number };
  /** The record as planning read it: the DNS change expects exactly this (null: none). */
  record: DnsRecordState | null;
  /** The stack DNS sends clients to, when there is one to catch up from. */
  old?: StackRef;
  next: { name: string; colour: Colour };
}

/** The old stack fenced and its last writes copied: the flip may commit. */
export interface Fenced {
  cursor: string;
  /** Undoes the fence; the flip turns it into pointing DNS back. */
  undo: Undo;
  /** The fence held (runs with patch fencing-tokens): the commit names its epoch. */
  fence?: HeldFence;
}

// ---------------------------------------------------------------- planning

export async function plan(run: SwitchRun): Promise<Planned> {
  const { env } = run;
  run.enter('planning', `reading which stack ${env} serves from DNS`);
  const found = await quick.planSwitch(env);
  const settings = {
    ...found.settings,
    // `switch --approval` decides for this switch; the environment file only sets the default.
    approval: run.input.approval ?? found.settings.approval,
    // Runs planned before these settings existed get the environment file's defaults.
    fenceLeaseSeconds: found.settings.fenceLeaseSeconds ?? DEFAULT_FENCE_LEASE_SECONDS,
    maxWritePauseSeconds: found.settings.maxWritePauseSeconds ?? DEFAULT_MAX_WRITE_PAUSE_SECONDS,
  };
  const live = found.live?.stack;
  let old: StackRef | undefined;
  if (live?.outputs && live.status !== 'deleting' && live.status !== 'deleted') {
    old = { name: live.name, colour: live.colour, outputs: live.outputs };
    if (live.status !== 'ready')
      run.warn(
        `${live.name} serves while CloudFormation says ${live.rawStatus}: caught up from and fenced all the same`,
      );
    if (found.live?.forwardedBy)
      run.warn(
        `${found.live.forwardedBy}, which DNS names, forwards to ${live.name}: caught up from and fenced as the live stack`,
      );
  } else if (live && live.status !== 'deleted') {
    throw stop(
      'LiveStackUnknown',
      `DNS sends clients to ${live.name}, which is ${live.rawStatus} without outputs: its writes could not be caught up`,
    );
  } else if (found.live) {
    run.warn(
      `DNS points to ${found.live.record.stack || 'a target of no stack'}, which is not a stack of ${env}: nothing to catch up from`,
    );
  }
  const liveColour = old?.colour ?? colourOfStackName(found.live?.record.stack);
  const colour = liveColour ? otherColour(liveColour) : 'blue';
  // The first run's id: a reset starts a new run that must find the stack the first one created.
  const name = stackName(env, colour, shortId(workflowInfo().firstExecutionRunId));
  run.planned(old ? { stack: old.name, colour: old.colour } : undefined, { stack: name, colour });
  return { settings, record: found.live?.record ?? null, old, next: { name, colour } };
}

/** Stacks left by runs that are over (failed, terminated, still creating): removed before this switch adds one. */
export async function clearClosedRuns(run: SwitchRun, planned: Planned): Promise<void> {
  const stacks = await quick.listStacks(run.env);
  // Ready stacks wait for the tear-down, which knows which one is the previous live stack.
  const doomed = stacksToDelete(stacks, {
    live: planned.old?.name ?? planned.record?.stack,
    owned: [planned.next.name],
    keepStacks: stacks.length,
  });
  for (const stack of doomed) await deleteQuietly(run, stack.name, `left by a run that is over (${stack.rawStatus})`);
}

// ---------------------------------------------------------------- the new stack

export async function provision(run: SwitchRun, planned: Planned): Promise<StackRef> {
  const { env } = run;
  const { name, colour } = planned.next;
  run.enter('provisioning', `creating stack ${name} (${colour}, version ${run.input.version})`);
  if (run.input.keepFailed) run.describe(`creating stack ${name}; it is kept if the switch fails (--keep-failed)`);
  else run.onUndo(`delete stack ${name}`, () => provisioning.deleteStack({ env, name }));
  await provisioning.createStack({
    env,
    name,
    colour,
    workflowId: workflowInfo().workflowId,
    version: run.input.version,
  });
  const created = await provisioning.waitForStack({ env, name });
  if (!created.outputs) throw stop('StackWithoutOutputs', `stack ${name} is ready but has no outputs`);
  return { name, colour, outputs: created.outputs };
}

export async function restore(run: SwitchRun, next: StackRef): Promise<BackupSummary> {
  const { env } = run;
  run.enter('restoring', `finding backup '${run.input.backup}' of ${env}`);
  const backup = await quick.findBackup({ env, backup: run.input.backup });
  run.restoring(backup, 0);
  run.describe(`importing ${backup.items} items of backup ${backup.key} into ${next.name}`);
  const restored = await whileWatching(
    streaming.restoreBackup({ env, backupKey: backup.key, adminUrl: next.outputs.adminUrl }),
    async () => {
      const state = await quick.stackState({ env, adminUrl: next.outputs.adminUrl });
      const { items } = run.restoring(backup, state.items);
      run.describe(`imported ${items} of ${backup.items} items of backup ${backup.key} into ${next.name}`);
    },
  );
  run.restoring(backup, restored.items);
  return backup;
}

export async function smokeTest(run: SwitchRun, next: StackRef): Promise<void> {
  run.enter('smoke-testing', `checking ${next.name} directly at ${next.outputs.endpoint}`);
  const checks = await smoke.smokeTest({ env: run.env, stack: next.outputs });
  run.smokeTested(checks);
  const failed = checks.filter((check) => !check.ok);
  if (checks.length === 0) throw stop('SmokeFailed', 'the smoke runner reported no checks');
  if (failed.length) {
    throw stop(
      'SmokeFailed',
      `smoke checks failed: ${failed.map((c) => `${c.name}${c.detail ? ` (${c.detail})` : ''}`).join('; ')}`,
    );
  }
}

// ---------------------------------------------------------------- catching up and the flip

/** Copies the old stack's new writes into the new stack until few remain; returns where the copies ended. */
export async function catchUp(run: SwitchRun, planned: Planned, next: StackRef, since: string): Promise<CaughtUp> {
  const { old } = planned;
  if (!old) return { cursor: since, passes: [] };
  run.enter('catching-up', `copying writes ${old.name} took since the backup`);
  return copyUntilFew(run.env, old, next, since, planned.settings.catchUpFenceBelow, (copy, pass) =>
    run.describe(`pass ${pass} copied ${copy.copied} changes from ${old.name} to ${next.name}`),
  );
}

/** With `approval: manual`, waits for a person; writes are not refused meanwhile (the fence comes after). */
export async function awaitApproval(run: SwitchRun, planned: Planned): Promise<void> {
  const { settings } = planned;
  if (settings.approval !== 'manual') return;
  run.enter(
    'awaiting-approval',
    `${planned.next.name} passed its smoke checks; waiting up to ${settings.approvalTimeoutSeconds} s for 'switchyard approve --env ${run.env}' or abort`,
  );
  await run.notify(
    'awaiting-approval',
    `${planned.next.name} passed its smoke checks and waits up to ${settings.approvalTimeoutSeconds} s: ` +
      `approve with \`${approveCommandFor(run.env)}\``,
  );
  const decision = await run.approval(settings.approvalTimeoutSeconds);
  run.describe(`approved by ${decision.by}`);
}

/**
 * Fences the old stack with a lease and copies its last writes while the copy renews the lease.
 * If this worker dies, the renewals stop and the old stack opens again by itself. With fencing
 * tokens, writes made while a person approved are copied by unfenced passes first, the fence is
 * this run's by its epoch, and the copy under it stops at maxWritePauseSeconds.
 */
export async function fenceAndCopyLast(
  run: SwitchRun,
  planned: Planned,
  next: StackRef,
  since: string,
): Promise<Fenced | undefined> {
  const { old, settings } = planned;
  if (!old) return undefined;
  const { env } = run;
  const leaseSeconds = settings.fenceLeaseSeconds;
  if (patched(PATCHES.fencingTokens)) {
    if (run.phase === 'awaiting-approval') {
      run.enter('catching-up', `copying the writes ${old.name} took while ${env} waited for approval`);
      since = (await copyUntilFew(env, old, next, since, settings.catchUpFenceBelow)).cursor;
    }
    run.describe(
      `fencing ${old.name} (lease ${leaseSeconds} s, writes held at most ${settings.maxWritePauseSeconds} s) and copying its last writes to ${next.name}`,
    );
    const held: { fence?: HeldFence } = {};
    // Registered before the fence is asked for: a fence whose answer was lost was taken all the same.
    const undo = run.onUndo(`release the fence of ${old.name}`, () =>
      fencing.releaseFence({
        env,
        adminUrl: old.outputs.adminUrl,
        expected: { epoch: held.fence?.epoch ?? 0, mode: 'fenced' },
      }),
    );
    const limits = { leaseSeconds, maxWritePauseSeconds: settings.maxWritePauseSeconds };
    for (let fences = 1; ; fences += 1) {
      try {
        run.fenced(workflowNow());
        const fenced = await fenceAndCopy(env, old, next, since, limits, (fence) => (held.fence = fence));
        held.fence = fenced.fence;
        return { cursor: fenced.cursor, undo, fence: fenced.fence };
      } catch (err) {
        if (!lapsed(err) || fences >= MAX_FENCED_COPIES) throw err;
        // The worker stopped renewing for a whole lease (paused, or a retry came late): the old stack took writes again.
        run.describe(`${old.name}'s fence lapsed during the copy and it took writes again: fencing it again`);
      }
    }
  }
  const what = `fencing ${old.name} (lease ${leaseSeconds} s) and copying its last writes to ${next.name}`;
  if (run.phase === 'awaiting-approval') run.enter('catching-up', what);
  else run.describe(what);
  const undo = run.onUndo(`unfence stack ${old.name}`, () =>
    persistent.unfenceStack({ env, adminUrl: old.outputs.adminUrl }),
  );
  run.fenced(workflowNow());
  await quick.fenceStack({ env, adminUrl: old.outputs.adminUrl, leaseSeconds });
  const last = await copyLast(run, old, next, since, leaseSeconds);
  return { cursor: last.cursor, undo };
}

/**
 * A rehearsal's stand-in for the fence: copies the delta the fence would have copied, at the same
 * moment, with the old stack still taking writes, and measures how long that takes.
 */
export async function copyLastUnfenced(
  run: SwitchRun,
  planned: Planned,
  next: StackRef,
  since: string,
): Promise<CopyResult | undefined> {
  const { old } = planned;
  if (!old) return undefined;
  run.describe(
    `copying the last writes of ${old.name} to ${next.name} as a switch would under the fence, without fencing`,
  );
  return copyLast(run, old, next, since);
}

/** One copy of the old stack's writes since `since`; with a lease the old stack is fenced and the copy renews it. */
function copyLast(
  run: SwitchRun,
  old: StackRef,
  next: StackRef,
  since: string,
  renewFenceSeconds?: number,
): Promise<CopyResult> {
  return streaming.copyChanges({
    env: run.env,
    fromAdminUrl: old.outputs.adminUrl,
    toAdminUrl: next.outputs.adminUrl,
    since,
    ...(renewFenceSeconds ? { renewFenceSeconds } : {}),
  });
}

/**
 * The flip: the old stack forwards to the new one (the commit, refused if its fence lapsed or has
 * less than half its lease left), then DNS moves with one compare-and-swap. Answers the old
 * stack's cursor the data check compares up to (with fencing tokens: where the copy under the
 * fence that was committed ended).
 */
export async function flip(
  run: SwitchRun,
  planned: Planned,
  next: StackRef,
  fenced: Fenced | undefined,
): Promise<string | undefined> {
  const { env } = run;
  const { old, settings } = planned;
  run.enter('switching', `pointing ${settings.recordName} from ${planned.record?.stack || 'nothing'} to ${next.name}`);
  let oldThrough: string | undefined;
  if (old && fenced) {
    const back: PointBack = {
      env,
      recordName: settings.recordName,
      leaseSeconds: settings.fenceLeaseSeconds,
      from: next,
      to: old,
      since: fenced.cursor,
      undrain: false,
      catchUpFenceBelow: settings.catchUpFenceBelow,
      maxWritePauseSeconds: settings.maxWritePauseSeconds,
    };
    // The undo of the commit and of the DNS change below: pointing DNS back, writer first
    // (workflows/point-back.ts). Registered before the commit: a forward whose answer was lost committed.
    run.replaceUndo(fenced.undo, `point ${settings.recordName} back to ${old.name}`, () => pointBack(run, back));
    if (fenced.fence) {
      oldThrough = await commitFlip(run, planned, next, { cursor: fenced.cursor, fence: fenced.fence });
    } else {
      run.committing();
      await quick.forwardStack({
        env,
        adminUrl: old.outputs.adminUrl,
        to: next.outputs.endpoint,
        cursor: fenced.cursor,
        leaseSeconds: settings.fenceLeaseSeconds,
      });
    }
    const pause = run.committed();
    run.describe(
      `${old.name} forwards every request to ${next.name} (writes paused ${pause.fenceToForwardMs} ms); switching DNS`,
    );
  }
  // The DNS change. Its undo is the pointing back registered with the commit above; without an old stack there is none.
  const switched = await quick.switchDns({
    env,
    expected: planned.record,
    stack: next.name,
    target: next.outputs.dnsTarget,
  });
  run.dnsSwitched();
  if (switched.changeId) await dnsWait.waitDnsInSync({ env, changeId: switched.changeId });
  if (
    !(await dnsWait.verifyDns({ env, target: next.outputs.dnsTarget, withinSeconds: Math.max(60, 2 * settings.ttl) }))
  ) {
    throw stop('DnsNotAnswering', `resolvers do not answer ${settings.recordName} with ${next.name}`);
  }
  return oldThrough;
}

/** The undo of the flip: points DNS back, and tells the run where that left the writer and DNS. */
async function pointBack(run: SwitchRun, back: PointBack): Promise<void> {
  const progress = startPointingBack();
  try {
    await pointDnsBack(back, (details) => run.describe(details), progress);
  } catch (err) {
    run.notPointedBack(progress.dnsOnFrom);
    throw err;
  }
  // What DNS said when pointing back began decides the outcome: a change refused or never sent moved no client.
  run.pointedBack(progress.dnsOnFrom);
}

/**
 * The commit, refused when the old stack's fence lapsed or its copy is behind: then the old stack
 * is fenced and copied again, a few times. Given up past maxWritePauseSeconds since the fence.
 * Answers where the copy under the fence that was committed ended.
 */
async function commitFlip(
  run: SwitchRun,
  planned: Planned,
  next: StackRef,
  held: { cursor: string; fence: HeldFence },
): Promise<string> {
  const { env } = run;
  const { settings } = planned;
  const old = planned.old!;
  const limits = { leaseSeconds: settings.fenceLeaseSeconds, maxWritePauseSeconds: settings.maxWritePauseSeconds };
  for (let commits = 1; ; commits += 1) {
    const pausedMs = run.writePauseMs();
    if (pausedMs > settings.maxWritePauseSeconds * 1000) {
      throw stop(
        'WritePauseExceeded',
        `writes to ${old.name} were held ${Math.round(pausedMs / 1000)} s, more than maxWritePauseSeconds (${settings.maxWritePauseSeconds} s): the flip gives up`,
      );
    }
    try {
      run.committing();
      await fencing.commitForward({
        env,
        adminUrl: old.outputs.adminUrl,
        to: next.outputs.endpoint,
        ...held,
        leaseSeconds: settings.fenceLeaseSeconds,
      });
      return held.cursor;
    } catch (err) {
      if (!lapsed(err) || commits >= MAX_FENCED_COPIES) throw err;
      run.describe(
        `${old.name} refused the commit: its fence lapsed, or its copy is behind (a write it took or undid past the cursor): fencing it and copying again`,
      );
      // A copy behind its fence leaves the stack fenced, and its writes held, since the first fence.
      const behind = patched(PATCHES.pauseFromFirstFence) && refusedWith(err, 'CopyBehind');
      run.fenced(behind ? run.pausedSince() : workflowNow());
      const fenced = await fenceAndCopy(env, old, next, held.cursor, limits);
      held = { cursor: fenced.cursor, fence: fenced.fence };
    }
  }
}

// ---------------------------------------------------------------- after the switch

/** `oldThrough`: with fencing tokens the commit proves the old stack acknowledged nothing past this cursor. */
export async function verify(
  run: SwitchRun,
  planned: Planned,
  next: StackRef,
  oldThrough: string | undefined,
): Promise<void> {
  const { verifySeconds } = planned.settings;
  run.enter('verifying', `watching ${next.name} through ${planned.settings.recordName} for ${verifySeconds} s`);
  if (planned.old && patched(PATCHES.verifyData)) await verifyData(run, planned.old, next, oldThrough);
  const everyMs = Math.max(VERIFY_EVERY_MS, Math.ceil((verifySeconds * 1000) / VERIFY_LOOKS));
  let failuresInARow = 0;
  let watchedMs = 0;
  for (;;) {
    const probe = await quick.probeStack({
      env: run.env,
      endpoint: next.outputs.endpoint,
      adminUrl: next.outputs.adminUrl,
      target: next.outputs.dnsTarget,
    });
    failuresInARow = probe.ok ? 0 : failuresInARow + 1;
    if (failuresInARow >= 2) throw stop('VerificationFailed', `verification failed: ${probe.detail}`);
    // The watch ends on a healthy look: a failure at the very end is looked at once more.
    if (watchedMs >= verifySeconds * 1000 && probe.ok) return;
    const step = Math.max(1_000, Math.min(everyMs, verifySeconds * 1000 - watchedMs));
    run.describe(
      `${next.name} ${probe.ok ? 'healthy' : `unhealthy once (${probe.detail})`}; watched ${watchedMs / 1000} of ${verifySeconds} s`,
    );
    await sleep(step, { summary: 'until the next look at the new stack' });
    watchedMs += step;
  }
}

/** How many differing items a failed verification names. */
const MISMATCHES_NAMED = 10;

/**
 * Every item of the old stack, frozen since it forwards, must be on the new one at the same
 * revision or one changed from a copy of it; a difference fails the switch, which then points DNS back.
 */
async function verifyData(
  run: SwitchRun,
  old: StackRef,
  next: StackRef,
  oldThrough: string | undefined,
): Promise<void> {
  run.describe(`comparing every item of ${old.name} with ${next.name}`);
  const comparison = await streaming.compareStacks({
    env: run.env,
    fromAdminUrl: old.outputs.adminUrl,
    toAdminUrl: next.outputs.adminUrl,
    firstN: MISMATCHES_NAMED,
    ...(oldThrough ? { oldThrough } : {}),
  });
  const { itemsCompared, mismatches, firstMismatches } = comparison;
  run.dataVerified({ itemsCompared, mismatches, firstMismatches });
  if (mismatches > 0) {
    const named = firstMismatches
      .map((m) => `${m.id} (${m.problem}${m.newRev ? `: ${m.newRev} against ${m.oldRev}` : ''})`)
      .join(', ');
    throw stop(
      'DataMismatch',
      `${mismatches} of ${itemsCompared} items of ${old.name} differ on ${next.name}, first: ${named}`,
    );
  }
}

/** Waits on evidence: at least the record's TTL, until the old stack is idle, at most drainSeconds. Never fails the switch. */
export async function drain(run: SwitchRun, planned: Planned): Promise<void> {
  const { old, settings } = planned;
  if (!old) return;
  run.enter('draining', `telling ${old.name} to drain and waiting for its clients to leave`);
  try {
    const target = { env: run.env, adminUrl: old.outputs.adminUrl, nodes: old.outputs.nodes };
    await quick.drainStack(target);
    const floorMs = settings.ttl * 1000;
    const ceilingMs = Math.max(settings.drainSeconds * 1000, floorMs);
    // Look often enough to stop soon after the floor, rarely enough to keep the history small
    // (at most DRAIN_LOOKS looks however long drainSeconds is).
    const stepMs = Math.max(
      1_000,
      Math.min(30_000, floorMs, Math.ceil(ceilingMs / 10)),
      Math.ceil(ceilingMs / DRAIN_LOOKS),
    );
    let waitedMs = 0;
    while (waitedMs < ceilingMs) {
      const step = Math.min(stepMs, ceilingMs - waitedMs);
      await sleep(step, { summary: `drain of ${old.name}` });
      waitedMs += step;
      const activity = await quick.stackActivity(target);
      const idle = activity.openStreams === 0 && activity.requestRate < NEAR_ZERO_RPS;
      const pause = run.flipCounted(activity.flip);
      run.describe(
        `${old.name}: ${activity.openStreams} open streams, ${activity.requestRate.toFixed(1)} requests/s` +
          `${activity.unreachable ? `, ${activity.unreachable} nodes not answering` : ''}; waited ${waitedMs / 1000} s ` +
          `(at least ${floorMs / 1000} s, at most ${ceilingMs / 1000} s)` +
          (pause?.requestsForwarded !== undefined
            ? `; writes paused ${pause.fenceToForwardMs} ms, ${pause.requestsHeld} held, ${pause.requestsForwarded} forwarded`
            : ''),
      );
      if (idle && waitedMs >= floorMs) return;
      if (waitedMs >= ceilingMs) {
        run.warn(
          `${old.name} still had ${activity.openStreams} open streams and ${activity.requestRate.toFixed(1)} requests/s after ${ceilingMs / 1000} s of draining`,
        );
      }
    }
  } catch (err) {
    run.warn(`draining ${old.name} failed: ${reasonOf(err)}`);
  }
}

/**
 * Deletes the stacks no longer needed, chosen by what they are: the previous live stack is kept
 * first (it is where a rollback returns), the live one never goes. Never fails the switch.
 */
export async function tearDown(run: SwitchRun, planned: Planned, next: StackRef): Promise<void> {
  const { keepStacks } = planned.settings;
  run.enter(
    'tearing-down',
    `deleting stacks of ${run.env} beyond ${planned.old ? `${planned.old.name} and ` : ''}${keepStacks} kept`,
  );
  try {
    const stacks = await quick.listStacks(run.env);
    const doomed = stacksToDelete(stacks, {
      live: next.name,
      owned: [next.name],
      previous: planned.old?.name,
      keepStacks,
    });
    for (const stack of doomed) await deleteQuietly(run, stack.name, 'no longer needed');
  } catch (err) {
    run.warn(`tearing down failed: ${reasonOf(err)}`);
  }
}

/** The end of a rehearsal: its stack goes, whatever it found; a delete that fails is a warning (gc removes the stack later). */
export async function removeRehearsalStack(run: SwitchRun, next: StackRef): Promise<void> {
  run.enter('tearing-down', `deleting ${next.name}: a rehearsal keeps no stack`);
  await deleteQuietly(run, next.name, 'the rehearsal is over');
}

async function deleteQuietly(run: SwitchRun, name: string, why: string): Promise<void> {
  run.describe(`deleting ${name}: ${why}`);
  try {
    await provisioning.deleteStack({ env: run.env, name });
  } catch (err) {
    run.warn(`kept stack ${name}: ${reasonOf(err)}`);
  }
}

/**
 * Awaits `work`, and meanwhile calls `look` now and then, less often as time goes by (a 12-hour
 * restore takes about 150 looks): progress shown from evidence (the stack's own count). When the
 * switch is cancelled it still waits for `work` to stop, so that compensation never deletes a
 * stack an import is still writing into.
 */
async function whileWatching<T>(work: Promise<T>, look: () => Promise<void>): Promise<T> {
  let finished = false;
  work.then(
    () => (finished = true),
    () => (finished = true),
  );
  let everyMs = RESTORE_LOOK_FIRST_MS;
  try {
    while (!(await condition(() => finished, everyMs))) {
      everyMs = nextRestoreLookMs(everyMs);
      try {
        await look();
      } catch (err) {
        if (CancellationScope.current().consideredCancelled) throw err;
        // Progress is for people watching; a stats call that fails must not fail the restore.
      }
    }
  } catch (err) {
    await work.catch(() => undefined);
    throw err;
  }
  return work;
}

/** The wait before the next look at restore progress, after waiting `previousMs` for this one. */
export function nextRestoreLookMs(previousMs: number): number {
  return Math.min(previousMs * 2, RESTORE_LOOK_LONGEST_MS);
}

/**
 * Short, stable per run (the same on every replay and after a reset), and different for every
 * run: run ids are UUIDv7, whose leading digits are a timestamp shared by runs started within
 * about a minute, so the suffix comes from the random tail.
 */
function shortId(runId: string): string {
  return runId.replace(/-/g, '').slice(-8);
}
