/**
 * One run of `npm run chaos`: a switch or a rollback of the environment under retrying and plain
 * clients and their streams, with the run's faults striking meanwhile; then the environment is
 * left to settle, written to through DNS, collected (`switchyard gc`), and judged from outside.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import {
  TerminatedFailure,
  WorkflowExecutionAlreadyStartedError,
  WorkflowFailedError,
  type Client,
} from '@temporalio/client';
import { repoRoot, resolveSecret, type Environment } from '../config/environment.ts';
import type { LocalStackProvisioner } from '../cloud/local/stack-provisioner.ts';
import type { Ports } from '../cloud/ports.ts';
import { PublicName } from '../load/public-name.ts';
import type { Logger } from '../logging.ts';
import { SyncClient } from '../navcloud/client.ts';
import { signToken } from '../navcloud/token.ts';
import type { LocalEnvironment } from '../local/environment.ts';
import { startSwitchLoad, type LoadPlan } from '../local/switch-under-load.ts';
import {
  rollbackWorkflowId,
  statusQuery,
  switchStartOptions,
  TASK_QUEUE,
  type Phase,
  type RollbackInput,
  type RollbackReport,
  type SwitchInput,
  type SwitchReport,
} from '../switch/contract.ts';
import { runFault, type RiakControl, type Strike } from './faults.ts';
import { readAcknowledgments } from './journals.ts';
import { judgeRun, type RecoveryBound, type RunEnd, type RunEvidence, type Verdict } from './judges.ts';
import type { RunPlan } from './plan.ts';

const exec = promisify(execFile);

/** What every run works with. */
export interface ChaosWorld {
  local: LocalEnvironment;
  client: Client;
  env: Environment;
  /** Where the environment file the runs use lives (`switchyard gc --environments`). */
  environmentsDir: string;
  ports: Ports;
  stacks: LocalStackProvisioner;
  riak?: RiakControl;
  load: LoadPlan;
  bound: RecoveryBound;
  log: Logger;
}

export interface RunResult {
  plan: RunPlan;
  /** A fault-free switch made first, so that a rollback has a stack to return to. */
  prepared?: string;
  from: string;
  end: RunEnd;
  reason?: string;
  strikes: Strike[];
  evidence: RunEvidence;
  verdicts: Verdict[];
  ok: boolean;
  /** Where a failed run's client history was written. */
  history?: string;
}

/** Users of run k of seed S are `fleet-chaos-sS-rk-N`, `plain-chaos-sS-rk-N` and `chaos-sS-rk-probe`. */
export const runUsers = (plan: Pick<RunPlan, 'seed' | 'run'>) => `chaos-s${plan.seed}-r${plan.run}`;

export async function chaosRun(world: ChaosWorld, plan: RunPlan): Promise<RunResult> {
  const { env, local, log } = world;
  const prepared =
    plan.action === 'rollback' && !(await previousStack(world)) ? await prepareRollback(world) : undefined;
  const from = (await world.ports.dns.current(env.recordName))?.stack;
  if (!from)
    throw new Error(
      `${env.recordName} names no stack before run ${plan.run}: the environment is broken, see ${local.state.dataDir}/logs`,
    );
  const before = new Set((await world.ports.stacks.list(env.name)).map((s) => s.name));
  const users = runUsers(plan);
  const load = await startSwitchLoad({ env, state: local.state, load: world.load, log, userPrefix: users });
  let end: RunEnd;
  let reason: string | undefined;
  let closedAfterMs: number;
  let strikes: Strike[];
  try {
    // Every client holds a stream and has written on the stack it is on before anything happens.
    await sleep(Math.max(1_000, env.smoke.heartbeatMs));
    const startedAt = Date.now();
    const workflowId = await startRun(world, plan.action);
    const closed = awaitClose(world.client, workflowId, startedAt + world.bound.closeMs);
    const phaseBegan = watchPhases(world.client, workflowId, closed);
    const faults = Promise.all(
      plan.faults.map((fault) =>
        runFault(
          fault,
          {
            processes: local.processes,
            stacks: world.stacks,
            riak: world.riak,
            stackOf: async (which) => (which === 'old' ? from : await newStack(world, plan.action, from, before)),
            phaseBegan,
          },
          startedAt,
          closed,
        ),
      ),
    );
    ({ end, reason } = await closed);
    closedAfterMs = Date.now() - startedAt;
    strikes = await faults;
    if (end === 'stuck') await terminate(world.client, workflowId);
    // Clients follow on their own: the TTL runs out, or a drained stream says `reconnect`.
    await sleep(env.ttl * 1_000 + 2 * env.smoke.heartbeatMs);
  } finally {
    await load.stop();
  }
  const probe = await probeWrite(world, `${users}-probe`);
  const name = new PublicName(env.recordName, hostPort(local.state.dnsServer));
  const clients = await name
    .addresses()
    .then((addresses) => load.verify(`http://${addresses[0]}:${env.parameters.port}`))
    .finally(() => name.close());
  const leftovers = await collectGarbage(world);
  const { acks, truncated } = await readAcknowledgments(local.state.ackJournals!, (owner) =>
    owner.includes(`${users}-`),
  );
  const evidence: RunEvidence = {
    action: plan.action,
    end,
    closedAfterMs,
    clients,
    acks,
    journalsTruncated: truncated,
    probe,
    leftovers,
  };
  const verdicts = judgeRun(evidence, world.bound);
  const ok = verdicts.every((v) => v.ok);
  // A failed run's history stays beside the logs: `.tools/bin/linearizability FILE` gives the verdict again.
  const history = ok ? undefined : join(local.state.dataDir, 'runs', `${users}.history.json`);
  if (history) {
    mkdirSync(dirname(history), { recursive: true });
    writeFileSync(history, JSON.stringify(load.history));
  }
  return {
    plan,
    ...(prepared ? { prepared } : {}),
    from,
    end,
    ...(reason ? { reason } : {}),
    strikes,
    evidence,
    verdicts,
    ok,
    ...(history ? { history } : {}),
  };
}

/**
 * Starts the run's workflow, tried again for up to half a minute while Temporal cannot take it (on
 * a busy machine its SQLite persistence times out); a start whose answer was lost is found running.
 */
async function startRun(world: ChaosWorld, action: RunPlan['action']): Promise<string> {
  const { client, env } = world;
  const start = async () => {
    if (action === 'switch') {
      const input: SwitchInput = { env: env.name, backup: 'latest', trigger: 'manual', version: 'chaos' };
      return (
        await client.workflow.start('stackSwitch', {
          ...switchStartOptions(input),
          taskQueue: TASK_QUEUE,
          args: [input],
        })
      ).workflowId;
    }
    const input: RollbackInput = { env: env.name, by: 'chaos' };
    return (
      await client.workflow.start('rollback', {
        workflowId: rollbackWorkflowId(env.name),
        taskQueue: TASK_QUEUE,
        args: [input],
      })
    ).workflowId;
  };
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      return await start();
    } catch (err) {
      if (err instanceof WorkflowExecutionAlreadyStartedError && err.workflowId) return err.workflowId;
      if (Date.now() > deadline) throw err;
      world.log.warn({ err }, "Temporal did not take the run's workflow; trying again");
      await sleep(1_000);
    }
  }
}

/**
 * Waits for the run's workflow to close, as its starter would, through a Temporal that may be
 * killed or frozen meanwhile: every call has a deadline and is tried again.
 */
async function awaitClose(
  client: Client,
  workflowId: string,
  deadline: number,
): Promise<{ end: RunEnd; reason?: string }> {
  const handle =
    client.workflow.getHandle<(input: SwitchInput & RollbackInput) => Promise<SwitchReport | RollbackReport>>(
      workflowId,
    );
  const call = <T>(fn: () => Promise<T>) => client.connection.withDeadline(Date.now() + 5_000, fn);
  for (;;) {
    if (Date.now() > deadline) return { end: 'stuck', reason: `still running at the bound` };
    const status = await call(() => handle.describe()).then(
      (d) => d.status.name,
      () => undefined,
    );
    if (status !== undefined && status !== 'RUNNING') break;
    await sleep(500);
  }
  for (;;) {
    try {
      const report = await call(() => handle.result());
      return {
        end: report.outcome === 'rehearsed' ? 'failed' : report.outcome,
        ...(report.reason ? { reason: report.reason } : {}),
      };
    } catch (err) {
      if (err instanceof WorkflowFailedError) {
        return {
          end: err.cause instanceof TerminatedFailure ? 'terminated' : 'failed',
          reason: (err.cause ?? err).message,
        };
      }
      if (Date.now() > deadline)
        return { end: 'stuck', reason: `closed, but its result could not be read: ${(err as Error).message}` };
      await sleep(500);
    }
  }
}

/**
 * When the run's workflow was first seen in each phase: one watcher per run asks its status query
 * every 100 ms (the fault agent may look at the run to aim; only the judges may not), so faults
 * aimed at one phase share one start even once a fault froze the worker that answers the query.
 * A phase never seen by the time the run closed resolves undefined.
 */
function watchPhases(
  client: Client,
  workflowId: string,
  closed: Promise<unknown>,
): (phase: Phase) => Promise<number | undefined> {
  const seen = new Map<Phase, number>();
  let over = false;
  const watching = (async () => {
    void closed.then(() => (over = true));
    const handle = client.workflow.getHandle(workflowId);
    while (!over) {
      const status = await client.connection
        .withDeadline(Date.now() + 2_000, () => handle.query(statusQuery))
        .catch(() => undefined);
      if (status && !seen.has(status.phase)) seen.set(status.phase, Date.now());
      await sleep(100);
    }
  })();
  return async (phase) => {
    while (!seen.has(phase) && !over) await Promise.race([sleep(50), watching]);
    return seen.get(phase);
  };
}

async function terminate(client: Client, workflowId: string): Promise<void> {
  await client.workflow
    .getHandle(workflowId)
    .terminate('npm run chaos: the run did not close within its bound')
    .catch(() => undefined);
}

/** A stack other than the live one that a rollback could return to. */
async function previousStack(world: ChaosWorld): Promise<string | undefined> {
  const live = (await world.ports.dns.current(world.env.recordName))?.stack;
  return (await world.ports.stacks.list(world.env.name)).find((s) => s.name !== live && s.status === 'ready')?.name;
}

/** A rollback needs a stack clients were on before: one fault-free switch makes it. */
async function prepareRollback(world: ChaosWorld): Promise<string> {
  const workflowId = await startRun(world, 'switch');
  const { end, reason } = await awaitClose(world.client, workflowId, Date.now() + world.bound.closeMs);
  if (end !== 'switched')
    throw new Error(`the fault-free switch made before a rollback ended ${end}: ${reason ?? 'no reason'}`);
  return `switched to ${(await world.ports.dns.current(world.env.recordName))?.stack}`;
}

/** The stack the run moves clients to: the one a switch creates, or the one a rollback returns to. */
async function newStack(
  world: ChaosWorld,
  action: RunPlan['action'],
  from: string,
  before: Set<string>,
): Promise<string | undefined> {
  const stacks = await world.ports.stacks.list(world.env.name);
  return stacks.find((s) => s.name !== from && (action === 'switch') !== before.has(s.name))?.name;
}

/** A write through the public name, tried until it is taken or the bound passes: the environment takes writes. */
async function probeWrite(world: ChaosWorld, user: string): Promise<RunEvidence['probe']> {
  const { env, local } = world;
  const started = Date.now();
  const token = await signToken(resolveSecret(env.jwtSecret), user, { expiresIn: 600 });
  const name = new PublicName(env.recordName, hostPort(local.state.dnsServer));
  let detail = 'not tried';
  try {
    while (Date.now() - started <= world.bound.writableMs) {
      try {
        name.forget();
        const [address] = await name.addresses();
        const client = new SyncClient({ baseUrl: `http://${address}:${env.parameters.port}`, token, timeoutMs: 5_000 });
        const answer = await client.putItem(`${user}-item`, { type: 'place', data: { at: Date.now() } });
        if (answer.ok) return { ok: true, afterMs: Date.now() - started, detail: `taken by ${address}` };
        detail = `${address} answered ${answer.status} ${answer.error.code}`;
      } catch (err) {
        detail = (err as Error).message;
      }
      await sleep(250);
    }
    return { ok: false, afterMs: Date.now() - started, detail };
  } finally {
    name.close();
  }
}

/**
 * `switchyard gc` as an operator runs it; then what is left beyond the live stack and the ones
 * keepStacks keeps, and any node process of a stack that no longer exists (found by the journal
 * path in its environment, which names its stack).
 */
async function collectGarbage(world: ChaosWorld): Promise<string[]> {
  const { env, local } = world;
  const leftovers: string[] = [];
  try {
    await exec(
      process.execPath,
      [
        resolve(repoRoot, 'bin/switchyard.js'),
        'gc',
        '--env',
        env.name,
        '--json',
        '--environments',
        world.environmentsDir,
      ],
      {
        cwd: repoRoot,
        timeout: 120_000,
        env: {
          ...process.env,
          SWITCHYARD_LOCAL_STATE: local.stateFile,
          TEMPORAL_ADDRESS: local.state.temporalAddress,
          LOG_LEVEL: 'warn',
        },
      },
    );
  } catch (err) {
    const failed = err as { code?: number; stderr?: string; message: string };
    leftovers.push(
      `(switchyard gc exited ${failed.code ?? '?'}: ${(failed.stderr ?? failed.message).trim().split('\n').at(-1)})`,
    );
  }
  const live = (await world.ports.dns.current(env.recordName))?.stack;
  const stacks = await world.ports.stacks.list(env.name);
  const others = stacks.filter((s) => s.name !== live);
  const kept = others.filter((s) => s.status === 'ready').slice(0, env.keepStacks);
  leftovers.push(...others.filter((s) => !kept.includes(s)).map((s) => `${s.name} (${s.status})`));
  const names = new Set(stacks.map((s) => s.name));
  for (const [pid, stack] of nodeProcesses(local.state.ackJournals!))
    if (!names.has(stack)) leftovers.push(`node process ${pid} of deleted stack ${stack}`);
  return leftovers;
}

/** Running sync nodes whose journal lies under `acksDir`, with their stack. */
function nodeProcesses(acksDir: string): Array<[number, string]> {
  const found: Array<[number, string]> = [];
  for (const entry of readdirSync('/proc').filter((e) => /^\d+$/.test(e))) {
    try {
      const journal = readFileSync(`/proc/${entry}/environ`, 'utf8')
        .split('\0')
        .find((v) => v.startsWith(`SYNC_ACK_JOURNAL=${acksDir}/`));
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      if (journal && !stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z'))
        found.push([Number(entry), journal.slice(`SYNC_ACK_JOURNAL=${acksDir}/`.length).split('/')[0]!]);
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
  return found;
}

function hostPort(server: string): { host: string; port: number } {
  const [host, port] = server.split(':');
  return { host: host!, port: Number(port) };
}
