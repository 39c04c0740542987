/**
 * The `nightlyRefresh` workflow, started by the schedule `nightly-refresh-<env>`: it starts the
 * night's stackSwitch as a child under the id every switch of the environment has, `switch-<env>`,
 * and waits for it. The server appends the scheduled time to ids of workflows a schedule starts,
 * so only a child started here meets the id conflict that keeps one switch per environment; a
 * night that finds a switch already running is skipped, which is a success, not a failure.
 * A schedule set with `--rehearse` starts a rehearsal under the same id instead.
 */
import {
  ChildWorkflowCancellationType,
  ParentClosePolicy,
  log,
  setCurrentDetails,
  startChild,
} from '@temporalio/workflow';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import {
  rehearsalStartOptions,
  switchStartOptions,
  switchWorkflowId,
  type SwitchInput,
  type NightlyRefreshInput,
  type NightlyRefreshResult,
} from '../src/switch/contract.ts';
import { stackSwitch } from './stack-switch.ts';
import { rehearsal } from './rehearsal.ts';

export async function nightlyRefresh(refresh: NightlyRefreshInput): Promise<NightlyRefreshResult> {
  const input: SwitchInput = {
    env: refresh.env,
    version: refresh.version,
    backup: refresh.backup,
    trigger: 'schedule',
  };
  const { env } = input;
  const workflowId = switchWorkflowId(env);
  const what = refresh.rehearse ? 'rehearse rolling out' : 'roll out';
  setCurrentDetails(`**starting** — ${workflowId} to ${what} version ${input.version}`);
  const child = await startChild(refresh.rehearse ? rehearsal : stackSwitch, {
    ...(refresh.rehearse ? rehearsalStartOptions(input) : switchStartOptions(input)),
    args: [input],
    // The switch answers to its own approve and abort only: ending or cancelling this night's
    // run must not cut a switch short, which would skip its compensation.
    parentClosePolicy: ParentClosePolicy.ABANDON,
    cancellationType: ChildWorkflowCancellationType.ABANDON,
  }).catch((err: unknown) => {
    if (err instanceof WorkflowExecutionAlreadyStartedError) return undefined;
    throw err;
  });
  if (!child) {
    const reason = `${workflowId} was already running (started by CI, by hand or by an earlier night), so this night's switch of ${env} is skipped`;
    setCurrentDetails(`**skipped** — ${reason}`);
    log.info('nightly switch skipped: a switch of the environment is running', { env, running: workflowId });
    return { env, outcome: 'skipped', running: workflowId, reason };
  }
  const runId = child.firstExecutionRunId;
  setCurrentDetails(
    `**${refresh.rehearse ? 'rehearsing' : 'switching'}** — started ${workflowId} (run ${runId}) to ${what} version ${input.version}; ` +
      `follow it with \`switchyard status --env ${env}\``,
  );
  log.info('nightly switch started', { env, switch: workflowId, switchRunId: runId });
  const report = await child.result();
  setCurrentDetails(
    `**${report.outcome}** — ${workflowId} (run ${runId}) ${report.outcome}${report.reason ? `: ${report.reason}` : ''}`,
  );
  return {
    env,
    outcome: report.outcome,
    switch: { workflowId, runId },
    ...(report.reason ? { reason: report.reason } : {}),
    report,
  };
}
