/** `switchyard worker`: runs the Switchyard worker on task queue `switchyard` until SIGINT/SIGTERM. */
import { Option } from 'commander';
import { TemporalUnreachableError } from '../../temporal/client.ts';
import { readLocalState } from '../../local/state.ts';
import type { CommandModule } from '../command.ts';
import type { Cli } from '../context.ts';
import { wholeNumber } from '../options.ts';

interface WorkerOptions {
  probePort?: number;
  probeHost: string;
  shutdownGrace?: number;
}

export const workerCommand: CommandModule = (program, cli) => {
  program
    .command('worker')
    .description("run a worker for every environment's switches (until Ctrl-C)")
    .addOption(
      new Option('--probe-port <port>', 'serve /healthz and /metrics (Prometheus) on this port')
        .env('SWITCHYARD_PROBE_PORT')
        .argParser(wholeNumber(1, 65_535, 'a port number')),
    )
    .addOption(
      new Option('--probe-host <address>', 'address the probe listens on')
        .env('SWITCHYARD_PROBE_HOST')
        .default('127.0.0.1'),
    )
    .addOption(
      new Option('--shutdown-grace <seconds>', 'how long running activities get to stop after SIGTERM (default 10)')
        .env('SWITCHYARD_SHUTDOWN_GRACE_SECONDS')
        .argParser(wholeNumber(0, 3_600, 'a whole number of seconds')),
    )
    .action((options: WorkerOptions) => runWorkerCommand(cli, options));
};

async function runWorkerCommand(cli: Cli, options: WorkerOptions): Promise<void> {
  // Reading the connection settings first turns a bad TLS setup into exit 2 before anything starts.
  const address = cli.temporalAddress;
  // The worker loads the workflow bundler and every adapter: only this command pays for them.
  const { defaultDeps, runWorker } = await import('../../temporal/worker.ts');
  const logger = cli.serviceLogger({ component: 'worker', taskQueue: cli.taskQueue });
  logger.debug({ address }, 'starting worker');
  try {
    await runWorker({
      taskQueue: cli.taskQueue,
      logger,
      deps: defaultDeps(readLocalState, logger),
      ...(options.probePort ? { probe: { host: options.probeHost, port: options.probePort } } : {}),
      ...(options.shutdownGrace !== undefined ? { shutdownGraceSeconds: options.shutdownGrace } : {}),
    });
  } catch (err) {
    // The SDK's TransportError class is internal; its name is what it promises.
    if (err instanceof Error && err.name === 'TransportError')
      throw new TemporalUnreachableError(address, { cause: err });
    throw err;
  }
}
