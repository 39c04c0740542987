/*
 * Frozen: the previous release's code, which switches and rollbacks started before patch
 * `switch-protocol-v2` (workflows/patches.ts) finish on. Do not change what it does; delete it
 * once no such run is open (and the first generation of history fixtures with it).
 */
/**
 * The `stackSwitch` workflow: the previous release's runbook. Each phase is a plain step; whatever a
 * step must undo if the switch fails is registered right next to it, and undone in reverse.
 */
import { CancellationScope, condition, setHandler, sleep, workflowInfo } from '@temporalio/workflow';
import { otherColour, type Colour, type StackDescription, type StackOutputs } from '../../src/cloud/ports.ts';
import {
  type Decision,
  type Outcome,
  type SwitchInput,
  type SwitchReport,
  abortUpdate,
  approveUpdate,
  statusQuery,
} from '../../src/switch/contract.ts';
import type { SwitchSettings } from '../../activities/types.ts';
import { dnsWait, persistent, provisioning, quick, smoke, streaming } from '../activities.ts';
import { SwitchRun } from './switch-run.ts';
import { reasonOf, stop } from '../failures.ts';
import { isoAt, workflowNow } from '../clock.ts';

/** How often the status query's restore progress is refreshed from the new stack's item count. */
const RESTORE_PROGRESS_EVERY_MS = 5_000;
/** Catch-up passes before fencing no matter how busy the old stack still is. */
const MAX_CATCH_UP_PASSES = 5;
/** Verification looks at the new stack this often; two failures in a row roll back. */
const VERIFY_EVERY_MS = 10_000;
/** A stack with fewer requests per second than this is as good as idle. */
const NEAR_ZERO_RPS = 0.5;

interface Undo {
  what: string;
  run: () => Promise<unknown>;
}

export async function stackSwitchV1(input: SwitchInput): Promise<SwitchReport> {
  const run = new SwitchRun(input);
  const { env } = input;
  const undo: Undo[] = [];
  const beforeSwitching = new CancellationScope();
  let abortedBy: Decision | undefined;
  let approvedBy: Decision | undefined;

  setHandler(statusQuery, () => run.status);
  setHandler(
    approveUpdate,
    (decision) => {
      approvedBy = decision;
      run.status.approval = { decision: 'approved', ...decision, at: isoAt(workflowNow()) };
      return run.status;
    },
    {
      validator: (decision) => {
        checkDecision(decision);
        if (run.phase !== 'awaiting-approval')
          throw new Error(`switch-${env} is not waiting for approval (it is ${run.phase})`);
      },
    },
  );
  setHandler(
    abortUpdate,
    (decision) => {
      abortedBy = decision;
      if (run.phase === 'awaiting-approval')
        run.status.approval = { decision: 'aborted', ...decision, at: isoAt(workflowNow()) };
      beforeSwitching.cancel();
      return run.status;
    },
    {
      validator: (decision) => {
        checkDecision(decision);
        if (abortedBy) throw new Error(`switch-${env} was already aborted by ${abortedBy.by}`);
        if (run.phase === 'rolling-back' || run.phase === 'failed' || run.phase === 'done') {
          throw new Error(`switch-${env} is already ${run.phase}`);
        }
        if (!run.beforeSwitching) {
          throw new Error(
            `too late to abort switch-${env}: it is ${run.phase} and DNS may already point to the new stack; use rollback instead`,
          );
        }
      },
    },
  );

  let settings!: SwitchSettings;
  let old: (StackDescription & { outputs: StackOutputs }) | undefined;
  let liveRecordStack: string | null = null;
  let next!: { name: string; colour: Colour; outputs: StackOutputs };
  let switchCursor: string | undefined;
  let switchedBack = false;

  /** Copies the old stack's new writes into the new stack until few remain; with `fence`, stops them and copies the rest. */
  async function catchUp(from: StackOutputs, since: string, fence: boolean): Promise<string> {
    let cursor = since;
    for (let pass = 1; pass <= MAX_CATCH_UP_PASSES; pass += 1) {
      const copy = await streaming.copyChanges({
        env,
        fromAdminUrl: from.adminUrl,
        toAdminUrl: next.outputs.adminUrl,
        since: cursor,
      });
      cursor = copy.cursor;
      run.describe(`pass ${pass} copied ${copy.copied} changes from ${old?.name} to ${next.name}`);
      if (copy.copied <= settings.catchUpFenceBelow) break;
    }
    if (!fence) return cursor;
    undo.push({
      what: `unfence stack ${old?.name}`,
      run: () => persistent.unfenceStack({ env, adminUrl: from.adminUrl }),
    });
    await quick.fenceStack({ env, adminUrl: from.adminUrl });
    run.describe(`${old?.name} fenced: copying its last writes to ${next.name}`);
    const last = await streaming.copyChanges({
      env,
      fromAdminUrl: from.adminUrl,
      toAdminUrl: next.outputs.adminUrl,
      since: cursor,
    });
    return last.cursor;
  }

  /** Undoes what was done, newest first. After the DNS switch the outcome is rolled-back only if DNS went back. */
  async function compensate(outcome: 'failed' | 'aborted' | 'after-switch', reason: string): Promise<SwitchReport> {
    return CancellationScope.nonCancellable(async () => {
      run.enter(
        'rolling-back',
        `${reason}; undoing: ${
          undo
            .map((u) => u.what)
            .reverse()
            .join(', ') || 'nothing'
        }`,
      );
      for (const step of undo.reverse()) {
        try {
          await step.run();
        } catch (err) {
          run.warn(`could not ${step.what}: ${reasonOf(err)}`);
        }
      }
      if (outcome !== 'after-switch') return finish(outcome, reason);
      if (switchedBack) return finish('rolled-back', reason);
      return finish(
        'failed',
        old
          ? `${reason}; switching back to ${old.name} failed`
          : `${reason}; there is no previous stack to switch back to`,
      );
    });
  }

  async function finish(outcome: Outcome, reason?: string): Promise<SwitchReport> {
    const report = run.finish(outcome, reason);
    try {
      await quick.writeReport(report);
    } catch (err) {
      run.warn(`could not write the report: ${reasonOf(err)}`);
    }
    return report;
  }

  // ---------------------------------------------------------------- up to the switch
  try {
    await beforeSwitching.run(async () => {
      run.enter('planning', `reading which stack ${env} serves from DNS`);
      const plan = await quick.planSwitch(env);
      // `switch --approval` decides for this switch; the environment file only sets the default.
      settings = input.approval ? { ...plan.settings, approval: input.approval } : plan.settings;
      liveRecordStack = plan.live?.record.stack ?? null;
      const liveStack = plan.live?.stack;
      if (liveStack?.status === 'ready' && liveStack.outputs) old = { ...liveStack, outputs: liveStack.outputs };
      else if (plan.live)
        run.warn(
          `DNS points to ${plan.live.record.stack}, which is ${liveStack?.status ?? 'gone'}: nothing to catch up from`,
        );
      const liveColour = liveStack?.colour ?? colourInName(liveRecordStack);
      const colour = liveColour ? otherColour(liveColour) : 'blue';
      const name = `navcloud-${env}-${colour}-${shortId(workflowInfo().runId)}`;
      run.planned(liveRecordStack && liveColour ? { stack: liveRecordStack, colour: liveColour } : undefined, {
        stack: name,
        colour,
      });

      run.enter('provisioning', `creating stack ${name} (${colour}, version ${input.version})`);
      if (input.keepFailed) run.describe(`creating stack ${name}; it is kept if the switch fails (--keep-failed)`);
      else undo.push({ what: `delete stack ${name}`, run: () => provisioning.deleteStack({ env, name }) });
      await provisioning.createStack({
        env,
        name,
        colour,
        workflowId: workflowInfo().workflowId,
        version: input.version,
      });
      const created = await provisioning.waitForStack({ env, name });
      next = { name, colour, outputs: created.outputs! };

      run.enter('restoring', `finding backup '${input.backup}' of ${env}`);
      const backup = await quick.findBackup({ env, backup: input.backup });
      run.status.backup = { key: backup.key, items: backup.items };
      run.status.restore = { items: 0, total: backup.items };
      run.describe(`importing ${backup.items} items of backup ${backup.key} into ${name}`);
      const restored = await whileWatching(
        streaming.restoreBackup({ env, backupKey: backup.key, adminUrl: next.outputs.adminUrl }),
        async () => {
          const state = await quick.stackState({ env, adminUrl: next.outputs.adminUrl });
          run.status.restore = { items: Math.min(state.items, backup.items), total: backup.items };
          run.describe(
            `imported ${run.status.restore.items} of ${backup.items} items of backup ${backup.key} into ${name}`,
          );
        },
      );
      run.status.restore = { items: restored.items, total: backup.items };

      run.enter('smoke-testing', `checking ${name} directly at ${next.outputs.endpoint}`);
      const checks = await smoke.smokeTest({ env, stack: next.outputs });
      run.smokeChecks = checks;
      run.status.smoke = checks;
      const failed = checks.filter((check) => !check.ok);
      if (checks.length === 0) throw stop('SmokeFailed', 'the smoke runner reported no checks');
      if (failed.length) {
        throw stop(
          'SmokeFailed',
          `smoke checks failed: ${failed.map((c) => `${c.name}${c.detail ? ` (${c.detail})` : ''}`).join('; ')}`,
        );
      }

      const fenceNow = settings.approval !== 'manual';
      let cursor = backup.cursor;
      if (old) {
        run.enter('catching-up', `copying writes ${old.name} took since backup ${backup.key}`);
        cursor = await catchUp(old.outputs, cursor, fenceNow);
      }

      if (settings.approval === 'manual') {
        run.enter(
          'awaiting-approval',
          `${name} passed its smoke checks; waiting up to ${settings.approvalTimeoutSeconds} s for 'switchyard approve --env ${env}' or abort`,
        );
        if (!(await condition(() => approvedBy !== undefined, settings.approvalTimeoutSeconds * 1000))) {
          throw stop('ApprovalTimeout', `nobody approved or aborted within ${settings.approvalTimeoutSeconds} s`);
        }
        // Fencing waits for the approval: writes must not be refused while a person decides.
        if (old) {
          run.enter('catching-up', `approved by ${approvedBy!.by}: fencing ${old.name} and copying its last writes`);
          cursor = await catchUp(old.outputs, cursor, true);
        }
      }
      switchCursor = cursor;
    });
    // An abort accepted while the last step was finishing did not cancel anything.
    if (abortedBy) throw stop('Aborted', 'aborted');
  } catch (err) {
    if (abortedBy) return compensate('aborted', `aborted by ${abortedBy.by}: ${abortedBy.comment}`);
    return compensate('failed', reasonOf(err));
  }

  // ---------------------------------------------------------------- the switch and after
  try {
    run.enter('switching', `pointing ${settings.recordName} from ${liveRecordStack ?? 'nothing'} to ${next.name}`);
    const switched = await quick.switchDns({
      env,
      expectedStack: liveRecordStack,
      stack: next.name,
      target: next.outputs.dnsTarget,
    });
    if (old) {
      const from = old;
      undo.push({
        what: `switch ${settings.recordName} back to ${from.name}`,
        run: async () => {
          run.describe(`fencing ${next.name}, copying the writes it took back to ${from.name}, switching DNS back`);
          await persistent.fenceStack({ env, adminUrl: next.outputs.adminUrl });
          await streaming.copyChanges({
            env,
            fromAdminUrl: next.outputs.adminUrl,
            toAdminUrl: from.outputs.adminUrl,
            since: switchCursor!,
          });
          await persistent.unfenceStack({ env, adminUrl: from.outputs.adminUrl });
          const back = await persistent.switchDns({
            env,
            expectedStack: next.name,
            stack: from.name,
            target: from.outputs.dnsTarget,
          });
          if (back.changeId) await dnsWait.waitDnsInSync({ env, changeId: back.changeId });
          switchedBack = true;
        },
      });
    }
    if (switched.changeId) await dnsWait.waitDnsInSync({ env, changeId: switched.changeId });
    if (
      !(await dnsWait.verifyDns({ env, target: next.outputs.dnsTarget, withinSeconds: Math.max(60, 2 * settings.ttl) }))
    ) {
      throw stop('DnsNotAnswering', `resolvers do not answer ${settings.recordName} with ${next.name}`);
    }

    run.enter('verifying', `watching ${next.name} through ${settings.recordName} for ${settings.verifySeconds} s`);
    await verify();
  } catch (err) {
    return compensate('after-switch', reasonOf(err));
  }

  if (old) {
    run.enter('draining', `telling ${old.name} to drain and waiting for its clients to leave`);
    try {
      await drain(old);
    } catch (err) {
      run.warn(`draining ${old.name} failed: ${reasonOf(err)}`);
    }
  }

  run.enter('tearing-down', `deleting stacks of ${env} beyond the newest ${settings.keepStacks} previous ones`);
  await tearDown();
  return finish('switched');

  // ---------------------------------------------------------------- steps

  async function verify(): Promise<void> {
    let failuresInARow = 0;
    let watchedMs = 0;
    for (;;) {
      const probe = await quick.probeStack({
        env,
        endpoint: next.outputs.endpoint,
        adminUrl: next.outputs.adminUrl,
        target: next.outputs.dnsTarget,
      });
      failuresInARow = probe.ok ? 0 : failuresInARow + 1;
      if (failuresInARow >= 2) throw stop('VerificationFailed', `verification failed: ${probe.detail}`);
      // The watch ends on a healthy look: a failure at the very end is looked at once more.
      if (watchedMs >= settings.verifySeconds * 1000 && probe.ok) return;
      const step = Math.max(1_000, Math.min(VERIFY_EVERY_MS, settings.verifySeconds * 1000 - watchedMs));
      run.describe(
        `${next.name} ${probe.ok ? 'healthy' : `unhealthy once (${probe.detail})`}; watched ${watchedMs / 1000} of ${settings.verifySeconds} s`,
      );
      await sleep(step, { summary: 'until the next look at the new stack' });
      watchedMs += step;
    }
  }

  /** Waits on evidence: at least the record's TTL, until the old stack is idle, at most drainSeconds. */
  async function drain(from: StackDescription & { outputs: StackOutputs }): Promise<void> {
    const target = { env, adminUrl: from.outputs.adminUrl, nodes: from.outputs.nodes };
    await quick.drainStack(target);
    const floorMs = settings.ttl * 1000;
    const ceilingMs = Math.max(settings.drainSeconds * 1000, floorMs);
    // Look often enough to stop soon after the floor, rarely enough to keep the history small.
    const stepMs = Math.max(1_000, Math.min(30_000, floorMs, Math.ceil(ceilingMs / 10)));
    let waitedMs = 0;
    while (waitedMs < ceilingMs) {
      const step = Math.min(stepMs, ceilingMs - waitedMs);
      await sleep(step, { summary: `drain of ${from.name}` });
      waitedMs += step;
      const activity = await quick.stackActivity(target);
      const idle = activity.openStreams === 0 && activity.requestRate < NEAR_ZERO_RPS;
      run.describe(
        `${from.name}: ${activity.openStreams} open streams, ${activity.requestRate.toFixed(1)} requests/s` +
          `${activity.unreachable ? `, ${activity.unreachable} nodes not answering` : ''}; waited ${waitedMs / 1000} s ` +
          `(at least ${floorMs / 1000} s, at most ${ceilingMs / 1000} s)`,
      );
      if (idle && waitedMs >= floorMs) return;
      if (waitedMs >= ceilingMs) {
        run.warn(
          `${from.name} still had ${activity.openStreams} open streams and ${activity.requestRate.toFixed(1)} requests/s after ${ceilingMs / 1000} s of draining`,
        );
      }
    }
  }

  async function tearDown(): Promise<void> {
    const stacks = await quick.listStacks(env);
    const previous = stacks.filter((s) => s.name !== next.name && s.status !== 'deleted');
    for (const stack of previous.slice(settings.keepStacks)) {
      run.describe(`deleting ${stack.name}`);
      try {
        await provisioning.deleteStack({ env, name: stack.name });
      } catch (err) {
        run.warn(`kept stack ${stack.name}: ${reasonOf(err)}`);
      }
    }
  }
}

/**
 * Awaits `work`, and meanwhile calls `look` every RESTORE_PROGRESS_EVERY_MS: progress shown from
 * evidence (the stack's own count), without the activity having to reach back into the workflow.
 */
async function whileWatching<T>(work: Promise<T>, look: () => Promise<void>): Promise<T> {
  let finished = false;
  work.then(
    () => (finished = true),
    () => (finished = true),
  );
  while (!(await condition(() => finished, RESTORE_PROGRESS_EVERY_MS))) {
    try {
      await look();
    } catch {
      // Progress is for people watching; a stats call that fails must not fail the restore.
    }
  }
  return work;
}

function checkDecision(decision: Decision): void {
  if (!decision || typeof decision.by !== 'string' || !decision.by.trim())
    throw new Error('a decision needs `by`: who decides');
  if (typeof decision.comment !== 'string') throw new Error('a decision needs `comment`: why');
}

/**
 * Short, stable per run (the same on every replay), and different for every run: run ids are
 * UUIDv7, whose leading digits are a timestamp shared by runs started within about a minute, so
 * the suffix comes from the random tail.
 */
function shortId(runId: string): string {
  return runId.replace(/-/g, '').slice(-8);
}

function colourInName(stack: string | null): Colour | undefined {
  const match = stack ? /-(blue|green)-[^-]+$/.exec(stack) : null;
  return (match?.[1] as Colour | undefined) ?? undefined;
}
