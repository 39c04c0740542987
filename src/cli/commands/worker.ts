/** `switchyard worker`: runs the Switchyard worker on task queue `switchyard` until SIGINT/SIGTERM. */
import { TemporalUnreachableError } from '../../temporal/client.ts';
import { readLocalState } from '../../local/state.ts';
import type { CommandModule } from '../command.ts';
import type { Cli } from '../context.ts';

export const workerCommand: CommandModule = (program, cli) => {
  program.command('worker')
    .description('run a worker for every environment\'s switches (until Ctrl-C)')
    .action(() => runWorkerCommand(cli));
};

async function runWorkerCommand(cli: Cli): Promise<void> {
  // Reading the connection settings first turns a bad TLS setup into exit 2 before anything starts.
  const address = cli.temporalAddress;
  // The worker loads the workflow bundler and every adapter: only this command pays for them.
  const { defaultDeps, runWorker } = await import('../../temporal/worker.ts');
  cli.logger.debug({ address, taskQueue: cli.taskQueue }, 'starting worker');
  try {
    await runWorker({ taskQueue: cli.taskQueue, deps: defaultDeps(readLocalState) });
  } catch (err) {
    // The SDK's TransportError class is internal; its name is what it promises.
    if (err instanceof Error && err.name === 'TransportError') throw new TemporalUnreachableError(address, { cause: err });
    throw err;
  }
}
