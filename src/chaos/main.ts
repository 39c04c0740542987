/**
 * `npm run chaos -- --runs N --seed S [--store sqlite|riak] [--faults …] [--minutes M] [--run K]`:
 * many switches and rollbacks of the local profile, each under client load while a fault strikes,
 * judged from outside (src/chaos/judges.ts). Exit 0 when every run passed, 1 when one failed,
 * 2 for bad arguments.
 */
import { randomInt } from 'node:crypto';
import { Command, InvalidArgumentError, Option } from 'commander';
import { createRootLogger } from '../logging.ts';
import { describeLocalStore, type LocalStore } from '../cloud/local/stack-spec.ts';
import { wholeNumber } from '../cli/options.ts';
import { EXIT } from '../switch/contract.ts';
import { runChaos } from './chaos.ts';
import { parseFaultMenu } from './plan.ts';

interface Arguments {
  runs: number;
  seed?: number;
  run?: number;
  store: 'sqlite' | 'riak';
  faults?: string;
  minutes?: number;
  riakctl?: string;
  verbose?: boolean;
}

const program = new Command('chaos')
  .description('switches and rollbacks of the local profile under client load and real faults, judged from outside')
  .option('--runs <n>', 'runs to make', wholeNumber(1, 10_000), 10)
  .option('--seed <s>', 'seed of the plans (random when left out; printed either way)', wholeNumber(0, 2 ** 31 - 1))
  .option('--run <k>', 'make only run k of the seed: what a failed run prints to replay it', wholeNumber(0, 10_000))
  .addOption(
    new Option('--store <store>', "the stacks' store; riak uses RIAK_URL and adds its nodes to the faults")
      .choices(['sqlite', 'riak'])
      .default('sqlite'),
  )
  .option(
    '--faults <list>',
    'the faults to draw from: worker, temporal, node-old, node-new, dns, rabbitmq, riak, each optionally :kill or :stop (default: all)',
  )
  .option('--minutes <m>', 'start no run after this many minutes', wholeNumber(1, 10_000))
  .option(
    '--riakctl <path>',
    'the script that kills and starts Riak nodes (default ../shared/riak/riakctl beside the checkout)',
  )
  .option('--verbose', 'debug logs of the environment on stderr')
  .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : EXIT.usage));

const args = program.parse().opts<Arguments>();
let store: LocalStore = 'sqlite';
try {
  if (args.store === 'riak') {
    const url = process.env.RIAK_URL;
    if (!url)
      throw new InvalidArgumentError('--store riak needs RIAK_URL=http://HOST:PORT[?…] naming the Riak cluster');
    store = `riak:${url}`;
    const problem = describeLocalStore(store);
    if (problem) throw new InvalidArgumentError(`RIAK_URL: ${problem}`);
  }
  parseFaultMenu(args.faults, args.store === 'riak');
} catch (err) {
  process.stderr.write(`chaos: ${(err as Error).message}\n`);
  process.exit(EXIT.usage);
}
// Ctrl-C tears the environment down before leaving: nothing it started is left running.
const interrupted = new AbortController();
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => interrupted.abort(signal));
const summary = await runChaos({
  runs: args.runs,
  seed: args.seed ?? randomInt(2 ** 31 - 1),
  ...(args.run === undefined ? {} : { run: args.run }),
  store,
  ...(args.faults ? { faults: args.faults } : {}),
  ...(args.minutes ? { minutes: args.minutes } : {}),
  ...(args.riakctl ? { riakctl: args.riakctl } : {}),
  signal: interrupted.signal,
  out: (line) => process.stdout.write(`${line}\n`),
  log: createRootLogger('chaos', { level: args.verbose ? 'debug' : 'warn' }),
}).catch((err: unknown) => {
  if (!interrupted.signal.aborted) throw err;
  process.stderr.write(`chaos: stopped by ${String(interrupted.signal.reason)}; the environment was torn down\n`);
  process.exit(130);
});
process.exit(summary.ok ? 0 : 1);
