/**
 * `switchyard demo` (`npm run demo`, README.md): a switch of `dev` and a switch back, each under a
 * synthetic client load going through DNS; prints both reports with the clients' figures and
 * exits 0 only if every target is met. Uses the running local environment if `up` started one,
 * else starts its own and tears it down at the end.
 */
import { Client, Connection } from '@temporalio/client';
import { EXIT } from '../../switch/contract.ts';
import { renderMarkdown } from '../../switch/report.ts';
import { startLocalEnvironment, type LocalEnvironment } from '../../local/environment.ts';
import { runningEnvironment } from '../../local/control.ts';
import { localDataDir, localStatePath } from '../../local/state.ts';
import { switchUnderLoad } from '../../local/switch-under-load.ts';
import { wholeNumber } from '../options.ts';
import type { CommandModule } from '../command.ts';
import type { Cli } from '../context.ts';

interface DemoOptions {
  env: string;
  users: number;
  writesPerSecond: number;
}

const positive = wholeNumber(1, 10_000);

export const demoCommand: CommandModule = (program, cli) => {
  program
    .command('demo')
    .description(
      'switch dev and back under synthetic client load through DNS, and check zero failed requests and zero lost writes',
    )
    .option('--env <name>', 'local-profile environment to switch', 'dev')
    .option('--users <n>', 'synthetic users, each holding a stream', positive, 50)
    .option('--writes-per-second <n>', 'writes per second across all users', positive, 50)
    .action((options: DemoOptions) => runDemo(cli, options));
};

async function runDemo(cli: Cli, options: DemoOptions): Promise<void> {
  const log = cli.logger.child({ command: 'demo' });
  const env = await cli.environment(options.env);
  const stateFile = localStatePath();
  let own: LocalEnvironment | undefined;
  let state = runningEnvironment(stateFile);
  if (state) {
    cli.err(`Using the running local environment (supervisor pid ${state.processes.supervisor}).`);
  } else {
    cli.err('Starting the local environment (Temporal with its Web UI, moto, RabbitMQ, DNS responder, worker)...');
    own = await startLocalEnvironment({
      dataDir: localDataDir(),
      envs: [env.name],
      environmentsDir: cli.environmentsDir,
      temporalPort: 7233,
      uiPort: 8233,
      persistTemporal: true,
      dnsPort: 5353,
      seedItems: 1000,
      log,
    });
    state = own.state;
  }
  const connection = await Connection.connect({ address: state.temporalAddress });
  try {
    const client = new Client({ connection });
    cli.err(`Watch it in the Temporal Web UI: ${state.temporalUiUrl ?? '(headless)'}`);
    let allMet = true;
    for (const leg of ['switch', 'switch back']) {
      cli.err(
        `\n${leg}: ${options.users} clients writing ${options.writesPerSecond}/s and streaming through ${env.recordName}...`,
      );
      const result = await switchUnderLoad({
        client,
        env,
        state,
        load: { users: options.users, writesPerSecond: options.writesPerSecond },
        log,
      });
      cli.out(renderMarkdown(result.report));
      cli.out(
        '\n## Targets\n\n' +
          result.targets.map((t) => `- [${t.ok ? 'x' : ' '}] ${t.name}: ${t.detail}`).join('\n') +
          '\n',
      );
      allMet &&= result.targets.every((t) => t.ok);
      if (result.report.outcome !== 'switched') break;
    }
    cli.out(
      allMet
        ? 'Demo passed: both switches done, no client saw a failure, no write was lost.'
        : 'Demo FAILED: a target was missed (see above).',
    );
    cli.exitCode = allMet ? EXIT.switched : EXIT.failed;
  } finally {
    await connection.close();
    if (own) {
      cli.err('Tearing the local environment down...');
      await own.stop();
    }
  }
}
