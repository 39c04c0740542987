/**
 * `switchyard switch`: starts the environment's stackSwitch (with --rehearse its rehearsal); with
 * --wait follows it to the end, prints the report and exits 0 (switched, or rehearsed: a switch
 * would have gone ahead) or 1 (anything else).
 */
import { Option } from 'commander';
import {
  WorkflowExecutionAlreadyStartedError,
  WorkflowFailedError,
  type WorkflowHandle,
  type WorkflowHandleWithFirstExecutionRunId,
} from '@temporalio/client';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  EXIT,
  rehearsalStartOptions,
  switchReport,
  switchStartOptions,
  switchWorkflowId,
  type SwitchInput,
  type SwitchReport,
  type SwitchStatus,
  type Trigger,
  statusQuery,
} from '../../switch/contract.ts';
import { renderJson, renderMarkdown } from '../../switch/report.ts';
import type { stackSwitch } from '../../../workflows/stack-switch.ts';
import { ENV_OPTION, type CommandModule } from '../command.ts';
import type { Cli } from '../context.ts';
import { ProgressReporter } from '../progress.ts';
import { busyError, defaultVersion, findSwitch, rootCause } from '../switches.ts';

interface SwitchOptions {
  env: string;
  backup: string;
  approval?: 'auto' | 'manual';
  version?: string;
  trigger?: Exclude<Trigger, 'schedule'>;
  wait?: boolean;
  json?: boolean;
  keepFailed?: boolean;
  rehearse?: boolean;
}

const POLL_MS = 500;
/** A status query that takes longer than this is skipped, not waited for: the next poll asks again. */
const QUERY_DEADLINE_MS = 2_000;
/** Without a single answer for this long, no worker is likely running: say so once. */
const NO_WORKER_HINT_MS = 10_000;
/** The shell's convention for "stopped by Ctrl-C". */
const INTERRUPTED = 130;

export const switchCommand: CommandModule = (program, cli) => {
  program
    .command('switch')
    .description('start a blue/green switch of an environment')
    .requiredOption(...ENV_OPTION)
    .option('--backup <latest|KEY>', 'backup to restore: latest or a manifest key', 'latest')
    .addOption(new Option('--approval <mode>', "override the environment's approval mode").choices(['auto', 'manual']))
    .option('--version <version>', "application version to roll out (default: this checkout's)")
    .addOption(
      new Option('--trigger <trigger>', 'who is switching (default: ci when CI is set, else manual)').choices([
        'ci',
        'manual',
      ]),
    )
    .option('--wait', 'follow the switch to its end and print the report')
    .option('--json', 'print JSON (with --wait: the switch report) instead of text')
    .option('--keep-failed', 'keep the new stack when the switch fails before switching DNS, to investigate')
    .option(
      '--rehearse',
      'everything up to the fence, without fencing, DNS untouched, the new stack deleted; reports the predicted write pause',
    )
    .action((options: SwitchOptions) => runSwitch(cli, options));
};

async function runSwitch(cli: Cli, options: SwitchOptions): Promise<void> {
  const environment = await cli.environment(options.env);
  const input: SwitchInput = {
    env: environment.name,
    backup: options.backup,
    trigger: options.trigger ?? (cli.io.env.CI ? 'ci' : 'manual'),
    version: options.version ?? defaultVersion(),
    ...(options.approval ? { approval: options.approval } : {}),
    ...(options.keepFailed ? { keepFailed: true } : {}),
  };
  const client = await cli.client();
  let handle: WorkflowHandleWithFirstExecutionRunId<typeof stackSwitch>;
  try {
    // A rehearsal starts under the switch's id too: it takes the environment's one lock.
    const workflowType = options.rehearse ? 'rehearsal' : 'stackSwitch';
    const startOptions = options.rehearse ? rehearsalStartOptions(input) : switchStartOptions(input);
    handle = await client.workflow.start<typeof stackSwitch>(workflowType, {
      ...startOptions,
      taskQueue: cli.taskQueue,
      args: [input],
    });
  } catch (err) {
    if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
    const winner = await findSwitch(client, input.env, true);
    throw busyError(
      input.env,
      winner?.description.workflowId ?? switchWorkflowId(input.env),
      winner?.description.startTime,
    );
  }
  const runId = handle.firstExecutionRunId;
  cli.logger.debug({ workflowId: handle.workflowId, runId, input, rehearse: !!options.rehearse }, 'switch started');

  if (!options.wait) {
    if (options.json) cli.out(JSON.stringify({ workflowId: handle.workflowId, runId }));
    else cli.out(`started ${handle.workflowId} (run ${runId}); watch it with \`switchyard status --env ${input.env}\``);
    return;
  }

  const report = await follow(cli, handle, input);
  cli.out(options.json ? renderJson(report) : renderMarkdown(report));
  cli.exitCode = report.outcome === (options.rehearse ? 'rehearsed' : 'switched') ? EXIT.switched : EXIT.failed;
}

/** Polls `status` while waiting for the result; the report comes from the workflow itself. */
async function follow(
  cli: Cli,
  handle: WorkflowHandleWithFirstExecutionRunId<typeof stackSwitch>,
  input: SwitchInput,
): Promise<SwitchReport> {
  const client = await cli.client();
  const reporter = new ProgressReporter(cli.io.stderr, !!cli.io.stderr.isTTY);
  const started = Date.now();
  let settled: { report: SwitchReport } | { error: unknown } | undefined;
  const result = handle.result().then(
    (report: SwitchReport) => {
      settled = { report };
    },
    (error: unknown) => {
      settled = { error };
    },
  );
  let last: SwitchStatus | undefined;
  let hinted = false;
  // Ctrl-C stops the watching, not the switch: say where to pick it up again.
  const onInterrupt = () => {
    reporter.finish();
    cli.err(
      `switchyard: stopped following ${handle.workflowId}; the switch goes on: watch it with \`switchyard status --env ${input.env}\``,
    );
    process.exit(INTERRUPTED);
  };
  process.once('SIGINT', onInterrupt);
  try {
    while (!settled) {
      try {
        last = await client.withDeadline(Date.now() + QUERY_DEADLINE_MS, () => handle.query(statusQuery));
        reporter.update(last, Date.now() - started);
      } catch (err) {
        // No worker has picked the switch up yet, or the query raced its end: ask again next time.
        cli.logger.debug({ err }, 'status query did not answer');
        if (!last && !hinted && Date.now() - started > NO_WORKER_HINT_MS) {
          hinted = true;
          reporter.finish();
          cli.err(
            `switchyard: no worker has answered for ${NO_WORKER_HINT_MS / 1000} s: is \`switchyard worker\` running for task queue ${cli.taskQueue}?`,
          );
        }
      }
      await Promise.race([result, sleep(POLL_MS)]);
    }
  } finally {
    process.off('SIGINT', onInterrupt);
    reporter.finish();
  }
  if ('report' in settled) return { ...settled.report, runId: settled.report.runId ?? handle.firstExecutionRunId };
  if (!(settled.error instanceof WorkflowFailedError)) throw settled.error;
  return thrownSwitchReport(cli, handle, input, settled.error, last);
}

/** The report of a switch that ended by throwing, from its last known status. */
async function thrownSwitchReport(
  cli: Cli,
  handle: WorkflowHandle,
  input: SwitchInput,
  err: WorkflowFailedError,
  last: SwitchStatus | undefined,
): Promise<SwitchReport> {
  const description = await handle.describe();
  const client = await cli.client();
  const status = await client
    .withDeadline(Date.now() + QUERY_DEADLINE_MS, () => handle.query(statusQuery))
    .catch(() => last);
  cli.logger.debug({ err }, 'switch workflow failed');
  return switchReport(input, status ?? { phases: [] }, {
    workflowId: handle.workflowId,
    runId: description.runId,
    outcome: status?.approval?.decision === 'aborted' ? 'aborted' : 'failed',
    reason: rootCause(err),
    smoke: status?.smoke ?? [],
    startedAt: description.startTime.toISOString(),
    finishedAt: (description.closeTime ?? new Date()).toISOString(),
  });
}
