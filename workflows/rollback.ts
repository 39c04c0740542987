/**
 * The `rollback` workflow: sends clients back to the previous stack, if it still exists, without
 * losing what the current stack accepted meanwhile: the same point-DNS-back step a switch undoes
 * its flip with (workflows/point-back.ts). A stack that a switch drained is a previous stack; one
 * kept after a failed switch (--keep-failed) never is, unless named. It runs under the
 * environment's switch workflow id, so a switch and a rollback never overlap (one lock).
 * Rollbacks started by the previous release finish on the code they started with (workflows/v1).
 */
import { CancellationScope, isCancellation, patched, setHandler, workflowInfo } from '@temporalio/workflow';
import type { SwitchStatus } from '../src/switch/contract.ts';
import type { StackRef } from '../activities/types.ts';
import { statusQuery, type RollbackInput, type RollbackReport } from './definitions.ts';
import { persistent, quick } from './activities.ts';
import { pointDnsBack, type PointBackProgress } from './point-back.ts';
import { PATCHES } from './patches.ts';
import { reasonOf } from './failures.ts';
import { isoAt, workflowNow } from './clock.ts';
import { rollbackV1 } from './v1/rollback.ts';

/** The fence lease of an environment whose settings predate leases. */
const DEFAULT_LEASE_SECONDS = 60;

export async function rollback(input: RollbackInput): Promise<RollbackReport> {
  if (!patched(PATCHES.protocolV2)) return rollbackV1(input);
  const { env, by } = input;
  const startedAt = workflowNow();
  const status: SwitchStatus = { env, phase: 'rolling-back', phases: [{ name: 'rolling-back', startedAt: isoAt(startedAt), durationMs: 0 }] };
  setHandler(statusQuery, () => status);
  const report = (outcome: RollbackReport['outcome'], fields: Partial<RollbackReport> = {}): RollbackReport => {
    status.phase = outcome === 'rolled-back' ? 'done' : 'failed';
    if (fields.reason && outcome !== 'rolled-back') status.error = fields.reason;
    return { env, workflowId: workflowInfo().workflowId, outcome, by, startedAt: isoAt(startedAt), finishedAt: isoAt(workflowNow()), ...fields };
  };

  let from: StackRef | undefined;
  let to: StackRef | undefined;
  const progress: PointBackProgress = { dnsOnFrom: false, undrained: false, writerMoved: false, dnsBack: false };
  try {
    const plan = await quick.planSwitch(env);
    const live = plan.live?.stack;
    if (!plan.live || !live?.outputs) {
      return report('failed', { reason: `the DNS record of ${env} sends clients to no stack with outputs: nothing to roll back from` });
    }
    from = { name: live.name, colour: live.colour, outputs: live.outputs };
    const found = await previousStack(input, from);
    if (!found) {
      return report('failed', {
        from: live.name,
        reason: input.to ? `stack ${input.to} of ${env} does not exist or is not ready` : `no previous stack of ${env} exists, is ready and served clients before`,
      });
    }
    to = found.stack;
    status.from = { stack: from.name, colour: from.colour };
    status.to = { stack: to.name, colour: to.colour };
    const back = {
      env, recordName: plan.settings.recordName, leaseSeconds: plan.settings.fenceLeaseSeconds ?? DEFAULT_LEASE_SECONDS,
      from, to, since: found.cursor, undrain: found.draining,
    };
    await pointDnsBack(back, () => undefined, progress);
    const left = from;
    await CancellationScope.nonCancellable(async () => {
      try {
        await quick.drainStack({ env, adminUrl: left.outputs.adminUrl, nodes: left.outputs.nodes });
      } catch {
        // DNS already points back; a node that cannot be told to drain still loses its clients with the TTL.
      }
    });
    return report('rolled-back', { from: from.name, to: to.name, ...(input.comment ? { reason: input.comment } : {}) });
  } catch (err) {
    return CancellationScope.nonCancellable(() => failed(err));
  }

  async function failed(err: unknown): Promise<RollbackReport> {
    let reason = isCancellation(err) ? 'cancelled' : reasonOf(err);
    if (to && progress.writerMoved) {
      reason += `; ${to.name} takes the writes again and ${from?.name} forwards to it` +
        (progress.dnsBack ? '' : `, though DNS could not be pointed back`);
    } else if (to && progress.undrained) {
      // Drained again, it stays the stack a later rollback finds and returns to.
      try {
        await persistent.drainStack({ env, adminUrl: to.outputs.adminUrl, nodes: to.outputs.nodes });
      } catch (drainErr) {
        reason += `; ${to.name} could not be drained again (${reasonOf(drainErr)}), so a later rollback will not pick it by itself`;
      }
    }
    return report(isCancellation(err) ? 'cancelled' : 'failed', { ...(from ? { from: from.name } : {}), ...(to ? { to: to.name } : {}), reason });
  }
}

/**
 * The stack to return to, where a copy into it starts, and whether a switch drained it: the one
 * the current stack forwards to (an earlier rollback moved the writer but not DNS), else the named
 * one, else a ready stack a switch drained.
 */
async function previousStack(input: RollbackInput, current: StackRef): Promise<{ stack: StackRef; cursor: string; draining: boolean } | undefined> {
  const { env } = input;
  const currentState = await quick.stackState({ env, adminUrl: current.outputs.adminUrl });
  const candidates = (await quick.listStacks(env))
    .filter((s) => s.name !== current.name && s.status === 'ready' && (!input.to || s.name === input.to));
  const forwardedTo = candidates.find((s) => s.outputs && s.outputs.endpoint === currentState.forwardTo);
  for (const candidate of forwardedTo ? [forwardedTo] : candidates) {
    if (!candidate.outputs) continue;
    const state = await quick.stackState({ env, adminUrl: candidate.outputs.adminUrl, nodes: candidate.outputs.nodes });
    // Only a stack a switch drained has served clients; one kept after a failed switch never passed.
    if (forwardedTo || input.to || state.draining) {
      return { stack: { name: candidate.name, colour: candidate.colour, outputs: candidate.outputs }, cursor: state.cursor, draining: state.draining };
    }
  }
  return undefined;
}
