/**
 * `npm run chaos` (src/chaos/main.ts) as a function, so that `npm test` runs a short mode of it:
 * a local environment of its own (free ports, a data folder of its own, Temporal persisted so runs
 * survive its restarts, journals on every stack node), then the runs, one after the other.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { environmentsDir as defaultEnvironmentsDir, loadEnvironment, repoRoot } from '../config/environment.ts';
import { createPorts, localStackProvisioner } from '../cloud/factory.ts';
import { describeLocalStore, type LocalStore } from '../cloud/local/stack-spec.ts';
import type { Logger } from '../logging.ts';
import { startLocalEnvironment } from '../local/environment.ts';
import { riakctl } from './faults.ts';
import type { RecoveryBound } from './judges.ts';
import { parseFaultMenu, planRun } from './plan.ts';
import { faultTable, failureLines, runLine } from './report.ts';
import { chaosRun, type ChaosWorld, type RunResult } from './run.ts';

export interface ChaosOptions {
  runs: number;
  seed: number;
  /** Only this run of the seed (a replay). */
  run?: number;
  /** `riak:URL` puts every stack on that Riak and adds its nodes to the menu. */
  store: LocalStore;
  /** `--faults`, as parsePlanMenu reads it; every target when absent. */
  faults?: string;
  /** No run starts after this many minutes. */
  minutes?: number;
  riakctl?: string;
  /** Aborted (Ctrl-C): the environment is torn down at once and the run in flight fails. */
  signal?: AbortSignal;
  out(line: string): void;
  log: Logger;
}

export interface ChaosSummary {
  results: RunResult[];
  ok: boolean;
  /** Kept when a run failed (logs, journals, reports), else removed. */
  dataDir: string;
}

/** The environment the runs switch: dev, with a short lease and one previous stack kept for rollbacks. */
export const FENCE_LEASE_SECONDS = 10;
const SEED_ITEMS = 500;

/**
 * The recovery bound: a run closes within 4 minutes of its start — a fault-free switch takes about
 * 30 s, a fault may strike 35 s in and last up to the lease plus 15 s, and a worker killed during a
 * one-shot activity is only noticed at its one-minute timeout — and a write through DNS is taken
 * within a lease and 10 s after it closed (a fence left behind lapses by then).
 */
export const RECOVERY_BOUND: RecoveryBound = { closeMs: 4 * 60_000, writableMs: (FENCE_LEASE_SECONDS + 10) * 1000 };

export async function runChaos(options: ChaosOptions): Promise<ChaosSummary> {
  const { out, log } = options;
  const menu = parseFaultMenu(options.faults, options.store !== 'sqlite');
  const storeProblem = describeLocalStore(options.store);
  if (storeProblem) throw new Error(storeProblem);
  const dataDir = mkdtempSync(join(tmpdir(), 'switchyard-chaos-'));
  const environmentsDir = join(dataDir, 'environments');
  mkdirSync(environmentsDir);
  const dev = parseYaml(readFileSync(join(defaultEnvironmentsDir, 'dev.yaml'), 'utf8')) as Record<string, unknown>;
  writeFileSync(
    join(environmentsDir, 'dev.yaml'),
    stringifyYaml({ ...dev, keepStacks: 1, fenceLeaseSeconds: FENCE_LEASE_SECONDS }),
  );
  const env = await loadEnvironment('dev', environmentsDir);

  out(
    `chaos: seed ${options.seed}, ${options.run === undefined ? `${options.runs} runs` : `run ${options.run} only`}, store ${options.store}, ` +
      `faults ${menu.map((c) => c.target + (c.mode ? `:${c.mode}` : '')).join(',')}, lease ${FENCE_LEASE_SECONDS} s; data in ${dataDir}`,
  );
  const local = await startLocalEnvironment({
    dataDir,
    envs: [env.name],
    environmentsDir,
    temporalPort: 0,
    persistTemporal: true,
    dnsPort: 0,
    seedItems: SEED_ITEMS,
    store: options.store,
    ackJournals: true,
    log,
  });
  const stop = () => void local.stop();
  options.signal?.addEventListener('abort', stop, { once: true });
  const connection = await Connection.connect({ address: local.state.temporalAddress });
  const results: RunResult[] = [];
  let ok = true;
  try {
    const world: ChaosWorld = {
      local,
      client: new Client({ connection }),
      env,
      environmentsDir,
      log,
      bound: RECOVERY_BOUND,
      ports: createPorts(env, log, local.state),
      stacks: localStackProvisioner(env, local.state, log),
      ...(options.store === 'sqlite'
        ? {}
        : { riak: riakctl(options.riakctl ?? resolve(repoRoot, '../shared/riak/riakctl')) }),
      load: { users: 8, writesPerSecond: 8, nonRetrying: { users: 8, writesPerSecond: 8 }, maxDurationMs: 10 * 60_000 },
    };
    const deadline = options.minutes === undefined ? Infinity : Date.now() + options.minutes * 60_000;
    const runs = options.run === undefined ? Array.from({ length: options.runs }, (_, k) => k) : [options.run];
    for (const run of runs) {
      options.signal?.throwIfAborted();
      if (Date.now() > deadline) {
        out(`chaos: ${options.minutes} minutes are up; ${results.length} of ${runs.length} runs done`);
        break;
      }
      const plan = planRun(options.seed, run, {
        menu,
        leaseMs: FENCE_LEASE_SECONDS * 1000,
        stackNodes: Number(env.parameters.nodes),
        riakNodes: 3,
      });
      const result = await chaosRun(world, plan);
      results.push(result);
      if (result.prepared) out(`#${run} prepared: ${result.prepared}`);
      out(runLine(result));
      if (!result.ok) {
        ok = false;
        for (const line of failureLines(result, replayCommand(options, run))) out(line);
      }
    }
    if (results.length) out(`\n${faultTable(results)}\n`);
    out(
      `chaos: ${results.filter((r) => r.ok).length} of ${results.length} runs passed${ok ? '' : `; logs, journals and reports kept in ${dataDir}`}`,
    );
  } catch (err) {
    ok = false;
    // The runs that were done are still worth their table (a soak cut short with Ctrl-C).
    if (results.length) out(`\n${faultTable(results)}\n`);
    out(
      `chaos: the harness stopped after ${results.length} runs: ${err instanceof Error ? err.message : String(err)}; logs kept in ${dataDir}`,
    );
    throw err;
  } finally {
    options.signal?.removeEventListener('abort', stop);
    await connection.close();
    await local.stop();
    if (ok) rmSync(dataDir, { recursive: true, force: true });
  }
  return { results, ok, dataDir };
}

/** The exact command that runs the plan of `run` again, alone. */
export function replayCommand(options: Pick<ChaosOptions, 'seed' | 'store' | 'faults'>, run: number): string {
  const store = options.store === 'sqlite' ? '' : ' --store riak';
  const faults = options.faults === undefined ? '' : ` --faults ${options.faults}`;
  return `npm run chaos -- --seed ${options.seed} --run ${run}${store}${faults}`;
}
