/**
 * The `stackSwitch` workflow as a runbook (docs/switch-protocol.md): the phases in order, each a
 * step of workflows/switch-phases.ts that registers its own undo right next to what it does.
 * Switches started by the previous release (no protocol-v2 marker in their history) finish on
 * the code they started with (workflows/v1).
 */
import { patched } from '@temporalio/workflow';
import type { SwitchInput, SwitchReport } from '../src/switch/contract.ts';
import { SwitchRun } from './switch-run.ts';
import { PATCHES } from './patches.ts';
import {
  awaitApproval,
  catchUp,
  clearClosedRuns,
  drain,
  fenceAndCopyLast,
  flip,
  plan,
  provision,
  restore,
  smokeTest,
  tearDown,
  verify,
} from './switch-phases.ts';
import { stackSwitchV1 } from './v1/stack-switch.ts';

export async function stackSwitch(input: SwitchInput): Promise<SwitchReport> {
  if (!patched(PATCHES.protocolV2)) return stackSwitchV1(input);
  const run = new SwitchRun(input);
  try {
    const { planned, next, fenced } = await run.untilSwitching(async () => {
      const planned = await plan(run);
      await run.notify(
        'started',
        `switching to ${planned.next.name} (version ${input.version}, trigger ${input.trigger})` +
          `${planned.old ? ` from ${planned.old.name}` : ''}`,
      );
      await clearClosedRuns(run, planned);
      const next = await provision(run, planned);
      const backup = await restore(run, next);
      await smokeTest(run, next);
      const { cursor } = await catchUp(run, planned, next, backup.cursor);
      await awaitApproval(run, planned);
      return { planned, next, fenced: await fenceAndCopyLast(run, planned, next, cursor) };
    });
    const oldThrough = await flip(run, planned, next, fenced);
    await verify(run, planned, next, oldThrough);
    // From here nothing fails the switch: DNS stays on the new stack whatever happens.
    await drain(run, planned);
    await tearDown(run, planned, next);
    return await run.finish('switched');
  } catch (err) {
    return run.compensate(err);
  }
}
