import { setTimeout as sleep } from 'node:timers/promises';
import type { WorkflowHandle } from '@temporalio/client';
import { statusQuery, type Phase, type SwitchStatus } from '../../src/switch/contract.ts';

/**
 * Asks a switch (or rollback) for its status until it reports one of `phases`. A query that fails
 * (the first workflow task has not run yet) is asked again, and so is a run that already ended: a
 * handle without a run id answers for the previous run until the next one starts. After
 * `timeoutMs` without the phase it fails with the last phase seen.
 */
export async function untilPhase(
  handle: WorkflowHandle,
  phases: Phase | Phase[],
  timeoutMs = 120_000,
): Promise<SwitchStatus> {
  const wanted = Array.isArray(phases) ? phases : [phases];
  const deadline = Date.now() + timeoutMs;
  let last: SwitchStatus | undefined;
  let error: unknown;
  while (Date.now() < deadline) {
    try {
      last = await handle.query(statusQuery);
    } catch (caught) {
      error = caught;
    }
    if (last && wanted.includes(last.phase)) return last;
    await sleep(25);
  }
  const seen = last ? `last phase ${last.phase}` : `no answer (${(error as Error | undefined)?.message ?? 'none'})`;
  throw new Error(`${handle.workflowId} never reached ${wanted.join(' or ')}: ${seen}`);
}
