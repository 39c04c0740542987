/**
 * The `rehearsal` workflow (`switchyard switch --rehearse`, docs/rehearsals.md): a switch's phases
 * up to the fence, from workflows/switch-phases.ts, then the last delta copied without fencing;
 * DNS and the live stack are left alone and the rehearsal's stack is deleted. It runs under the
 * environment's switch id, so it holds the same lock as a switch or a rollback.
 */
import type { CopyFigures, RehearsalFigures, SwitchInput, SwitchReport } from '../src/switch/contract.ts';
import type { CopyResult, StackRef } from '../activities/types.ts';
import { SwitchRun } from './switch-run.ts';
import {
  catchUp,
  clearClosedRuns,
  copyLastUnfenced,
  plan,
  provision,
  removeRehearsalStack,
  restore,
  smokeTest,
} from './switch-phases.ts';

export async function rehearsal(input: SwitchInput): Promise<SwitchReport> {
  const figures: RehearsalFigures = { wouldSwitch: false, catchUpPasses: [] };
  const run = new SwitchRun(input, figures);
  let next: StackRef;
  try {
    next = await run.untilSwitching(async () => {
      const planned = await plan(run);
      await clearClosedRuns(run, planned);
      const stack = await provision(run, planned);
      const backup = await restore(run, stack);
      await smokeTest(run, stack);
      const caughtUp = await catchUp(run, planned, stack, backup.cursor);
      figures.catchUpPasses = caughtUp.passes.map(copyFigures);
      // A switch would wait for approval here; a rehearsal asks nobody.
      const last = await copyLastUnfenced(run, planned, stack, caughtUp.cursor);
      if (last) {
        figures.lastDelta = copyFigures(last);
        figures.predictedWritePauseMs = figures.lastDelta.durationMs;
      }
      return stack;
    });
  } catch (err) {
    // Deletes the stack (unless --keep-failed); the live stack was never fenced, so nothing else is undone.
    return run.compensate(err);
  }
  figures.wouldSwitch = true;
  await removeRehearsalStack(run, next);
  return run.finish('rehearsed');
}

function copyFigures(copy: CopyResult): CopyFigures {
  return { items: copy.copied, durationMs: copy.durationMs ?? 0 };
}
