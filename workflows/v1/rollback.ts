/*
 * Frozen: the previous release's code, which switches and rollbacks started before patch
 * `switch-protocol-v2` (workflows/patches.ts) finish on. Do not change what it does; delete it
 * once no such run is open (and the first generation of history fixtures with it).
 */
/**
 * The `rollback` workflow: sends clients back to the previous stack, if it still exists and is
 * ready, without losing what the current stack accepted meanwhile. A stack that a switch drained
 * is a previous stack; one kept after a failed switch (--keep-failed) never is, unless named.
 * Its nodes are undrained before DNS points at them again, and drained again if it does not.
 */
import { workflowInfo } from '@temporalio/workflow';
import type { RollbackInput, RollbackReport } from '../../src/switch/contract.ts';
import { dnsWait, persistent, quick, streaming } from '../activities.ts';
import { reasonOf } from '../failures.ts';
import { isoAt, workflowNow } from '../clock.ts';

export async function rollbackV1(input: RollbackInput): Promise<RollbackReport> {
  const { env, by } = input;
  const startedAt = isoAt(workflowNow());
  const report = (outcome: RollbackReport['outcome'], fields: Partial<RollbackReport> = {}): RollbackReport => ({
    env,
    workflowId: workflowInfo().workflowId,
    outcome,
    by,
    startedAt,
    finishedAt: isoAt(workflowNow()),
    ...fields,
  });

  const plan = await quick.planSwitch(env);
  if (!plan.live)
    return report('failed', { reason: `the DNS record of ${env} points nowhere: nothing to roll back from` });
  const current = plan.live.record.stack;
  const candidates = (await quick.listStacks(env)).filter(
    (s) => s.name !== current && s.status === 'ready' && s.outputs && (!input.to || s.name === input.to),
  );
  let previous: (typeof candidates)[number] | undefined;
  let since: string | undefined;
  let wasDraining = false;
  for (const candidate of candidates) {
    const state = await quick.stackState({ env, adminUrl: candidate.outputs!.adminUrl });
    // Only a stack a switch drained has served clients; one kept after a failed switch never passed.
    if (input.to || state.draining) {
      previous = candidate;
      since = state.cursor;
      wasDraining = state.draining;
      break;
    }
  }
  if (!previous?.outputs || since === undefined) {
    return report('failed', {
      from: current,
      reason: input.to
        ? `stack ${input.to} of ${env} does not exist or is not ready`
        : `no previous stack of ${env} exists, is ready and served clients before`,
    });
  }
  const to = previous.outputs;
  const from = plan.live.stack?.outputs;

  let fenced = false;
  let undrained = false;
  let pointedBack = false;
  try {
    if (from) {
      // Writes the current stack took since the previous one stopped must follow the clients back.
      await quick.fenceStack({ env, adminUrl: from.adminUrl });
      fenced = true;
      await streaming.copyChanges({ env, fromAdminUrl: from.adminUrl, toAdminUrl: to.adminUrl, since });
    }
    await persistent.unfenceStack({ env, adminUrl: to.adminUrl });
    // Drained nodes fail readiness and refuse streams: clients sent back to them would find no service.
    undrained = true;
    await persistent.undrainStack({ env, adminUrl: to.adminUrl, nodes: to.nodes });
    const back = await quick.switchDns({ env, expectedStack: current, stack: previous.name, target: to.dnsTarget });
    pointedBack = true;
    if (back.changeId) await dnsWait.waitDnsInSync({ env, changeId: back.changeId });
  } catch (err) {
    let reason = reasonOf(err);
    if (pointedBack) {
      // The batch was accepted: clients are on their way to the previous stack. Unfencing the one
      // they leave would let both take writes, so it stays fenced until DNS is seen in sync.
      reason += `; DNS already points to ${previous.name}, so ${current} stays fenced`;
    } else if (fenced && from) {
      await persistent.unfenceStack({ env, adminUrl: from.adminUrl });
    }
    if (undrained && wasDraining && !pointedBack) {
      // Drained again, it stays the stack a later rollback finds and returns to.
      try {
        await persistent.drainStack({ env, adminUrl: to.adminUrl, nodes: to.nodes });
      } catch (drainErr) {
        reason += `; ${previous.name} could not be drained again (${reasonOf(drainErr)}), so a later rollback will not pick it by itself`;
      }
    }
    return report('failed', { from: current, to: previous.name, reason });
  }
  if (from) {
    try {
      await quick.drainStack({ env, adminUrl: from.adminUrl, nodes: from.nodes });
    } catch {
      // DNS already points back; a node that cannot be told to drain still loses its clients with the TTL.
    }
  }
  return report('rolled-back', {
    from: current,
    to: previous.name,
    ...(input.comment ? { reason: input.comment } : {}),
  });
}
