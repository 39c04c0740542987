/**
 * The `rollback` workflow: sends clients back to the previous stack, if it still exists and is
 * ready, without losing what the current stack accepted meanwhile.
 */
import { workflowInfo } from '@temporalio/workflow';
import type { RollbackInput, RollbackReport } from './definitions.ts';
import { dnsWait, persistent, quick, streaming } from './activities.ts';
import { reasonOf } from './failures.ts';
import { isoAt, workflowNow } from './clock.ts';

export async function rollback(input: RollbackInput): Promise<RollbackReport> {
  const { env, by } = input;
  const startedAt = isoAt(workflowNow());
  const report = (outcome: RollbackReport['outcome'], fields: Partial<RollbackReport> = {}): RollbackReport => ({
    env, workflowId: workflowInfo().workflowId, outcome, by, startedAt, finishedAt: isoAt(workflowNow()), ...fields,
  });

  const plan = await quick.planSwitch(env);
  if (!plan.live) return report('failed', { reason: `the DNS record of ${env} points nowhere: nothing to roll back from` });
  const current = plan.live.record.stack;
  const stacks = await quick.listStacks(env);
  const previous = stacks.find((s) => s.name !== current && s.status === 'ready' && s.outputs);
  if (!previous?.outputs) return report('failed', { from: current, reason: `no previous stack of ${env} exists and is ready` });
  const to = previous.outputs;
  const from = plan.live.stack?.outputs;

  let fenced = false;
  try {
    if (from) {
      // Writes the current stack took since the previous one stopped must follow the clients back.
      await quick.fenceStack({ env, adminUrl: from.adminUrl });
      fenced = true;
      const since = await quick.stackCursor({ env, adminUrl: to.adminUrl });
      await streaming.copyChanges({ env, fromAdminUrl: from.adminUrl, toAdminUrl: to.adminUrl, since });
    }
    await persistent.unfenceStack({ env, adminUrl: to.adminUrl });
    const back = await quick.switchDns({ env, expectedStack: current, stack: previous.name, target: to.dnsTarget });
    if (back.changeId) await dnsWait.waitDnsInSync({ env, changeId: back.changeId });
  } catch (err) {
    if (fenced && from) await persistent.unfenceStack({ env, adminUrl: from.adminUrl });
    return report('failed', { from: current, to: previous.name, reason: reasonOf(err) });
  }
  if (from) {
    try {
      await quick.drainStack({ env, adminUrl: from.adminUrl, nodes: from.nodes });
    } catch {
      // DNS already points back; a node that cannot be told to drain still loses its clients with the TTL.
    }
  }
  return report('rolled-back', { from: current, to: previous.name, ...(input.comment ? { reason: input.comment } : {}) });
}
