/** `switchyard schedule …`: the environment's nightly refresh (Temporal Schedule `nightly-refresh-<env>`). */
import type { Command } from 'commander';
import { EXIT, scheduleId } from '../../switch/contract.ts';
import {
  DEFAULT_CRON,
  deleteNightlySchedule,
  pauseNightlySchedule,
  setNightlySchedule,
  showNightlySchedule,
  triggerNightlySchedule,
  unpauseNightlySchedule,
} from '../../temporal/schedules.ts';
import { ENV_OPTION, type CommandModule } from '../command.ts';
import { ExitError } from '../errors.ts';
import { busyError, defaultVersion, findSwitch } from '../switches.ts';

function subcommand(schedule: Command, name: string, description: string): Command {
  return schedule
    .command(name)
    .description(description)
    .requiredOption(...ENV_OPTION);
}

export const scheduleCommand: CommandModule = (program, cli) => {
  const schedule = program.command('schedule').description('the nightly refresh switch of an environment');

  subcommand(schedule, 'set', 'create the nightly schedule, or change its time or version')
    .option('--cron <expr>', 'when, as a cron expression in UTC', DEFAULT_CRON)
    .option('--version <version>', "application version each night rolls out (default: this checkout's)")
    .option('--backup <latest|KEY>', 'backup each night restores', 'latest')
    .option('--rehearse', 'each night rehearses the switch (switch --rehearse) instead of switching')
    .action(async (options: { env: string; cron: string; version?: string; backup: string; rehearse?: boolean }) => {
      const environment = await cli.environment(options.env);
      const client = await cli.client();
      const done = await setNightlySchedule(client, {
        env: environment.name,
        cron: options.cron,
        version: options.version ?? defaultVersion(),
        backup: options.backup,
        taskQueue: cli.taskQueue,
        ...(options.rehearse ? { rehearse: true } : {}),
      });
      cli.out(
        `${done} ${scheduleId(environment.name)}: '${options.cron}' (UTC)${options.rehearse ? ', rehearsals only' : ''}`,
      );
    });

  subcommand(schedule, 'show', 'show the schedule: time, paused or not, next and recent runs')
    .option('--json', 'print it as JSON')
    .action(async (options: { env: string; json?: boolean }) => {
      const environment = await cli.environment(options.env);
      const view = await showNightlySchedule(await cli.client(), environment.name);
      if (!view)
        throw new ExitError(
          EXIT.failed,
          `environment ${environment.name} has no nightly schedule (${scheduleId(environment.name)})`,
        );
      if (options.json) return cli.out(JSON.stringify(view, null, 2));
      const lines = [
        `${view.scheduleId}: '${view.cron}' (${view.timezone}), version ${view.version}${view.rehearse ? ', rehearsals only' : ''}, ` +
          `${view.paused ? 'PAUSED' : 'active'}${view.note ? ` — ${view.note}` : ''}`,
        `next: ${view.nextRuns.slice(0, 3).join(', ') || 'none'}`,
        ...view.recentRuns.map(
          (run) =>
            `ran: ${run.scheduledAt} ${run.workflowId}${view.running.includes(run.workflowId) ? ' (running)' : ''}`,
        ),
      ];
      cli.out(lines.join('\n'));
    });

  for (const [name, description, done, act] of [
    ['pause', 'stop the nightly switches until unpaused', 'paused', pauseNightlySchedule],
    ['unpause', 'resume the nightly switches', 'unpaused', unpauseNightlySchedule],
  ] as const) {
    subcommand(schedule, name, description)
      .option('--note <text>', 'why (shown by `schedule show` and in the UI)')
      .action(async (options: { env: string; note?: string }) => {
        const environment = await cli.environment(options.env);
        const note = options.note ?? `${done} by ${cli.io.env.USER ?? 'switchyard'}`;
        await act(await cli.client(), environment.name, note);
        cli.out(`${done} ${scheduleId(environment.name)}: ${note}`);
      });
  }

  subcommand(schedule, 'trigger', 'run the nightly switch now').action(async (options: { env: string }) => {
    const environment = await cli.environment(options.env);
    const client = await cli.client();
    const id = scheduleId(environment.name);
    const night = await triggerNightlySchedule(client, environment.name);
    switch (night.outcome) {
      case 'started':
        cli.out(
          `triggered ${id}: ${night.nightly} started ${night.switch.workflowId} (run ${night.switch.runId}); ` +
            `watch it with \`switchyard status --env ${environment.name}\``,
        );
        return;
      case 'skipped': {
        // The night knows which id was taken; the CLI can also say since when.
        const running = await findSwitch(client, environment.name, true);
        throw busyError(
          environment.name,
          running?.description.workflowId ?? night.running,
          running?.description.startTime,
          `${night.nightly} started no switch`,
        );
      }
      case 'overlap':
        throw new ExitError(EXIT.busy, `${id} started nothing: its last night is still running (overlap: skip)`);
      case 'pending':
        cli.out(`triggered ${id}: started ${night.nightly}`);
        cli.err(
          `switchyard: no worker has run ${night.nightly} yet: is \`switchyard worker\` running for task queue ${cli.taskQueue}?`,
        );
    }
  });

  subcommand(schedule, 'delete', 'remove the nightly schedule (running switches go on)').action(
    async (options: { env: string }) => {
      const environment = await cli.environment(options.env);
      await deleteNightlySchedule(await cli.client(), environment.name);
      cli.out(`deleted ${scheduleId(environment.name)}`);
    },
  );
};
