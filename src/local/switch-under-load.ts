import { randomUUID } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { WorkflowFailedError, type Client } from '@temporalio/client';
import { resolveSecret, type Environment } from '../config/environment.ts';
import { createPorts } from '../cloud/factory.ts';
import { startClientLoad, type ClientLoad, type ClientLoadOptions } from '../load/client-load.ts';
import { checkLinearizability, History } from '../load/history.ts';
import { TASK_QUEUE, type ClientFigures, type SwitchInput, type SwitchReport } from '../switch/contract.ts';
import { switchStartOptions } from '../switch/contract.ts';
import type { Logger } from '../logging.ts';
import type { LocalState } from './state.ts';

export interface LoadPlan {
  users: number;
  writesPerSecond: number;
  /** Hard stop for the load, whatever happens to the switch. */
  maxDurationMs?: number;
  /** Clients that never retry, run beside the others (default 20 users writing 20/s in all). */
  nonRetrying?: { users: number; writesPerSecond: number };
}

export interface TargetCheck {
  name: string;
  ok: boolean;
  detail: string;
}

export interface SwitchUnderLoad {
  report: SwitchReport;
  clients: ClientFigures;
  targets: TargetCheck[];
  /** The workflow's wall time, start to result. */
  wallMs: number;
}

/**
 * Synthetic clients of `env` through its public name (real DNS, the environment's responder):
 * retrying ones and, beside them, ones that never retry, all recording into one history. stop()
 * ends them; verify() then checks every acknowledged write against a stack and the history with
 * Porcupine.
 */
export interface SwitchLoad {
  history: History;
  /** The longest write pause so far, retrying and plain clients alike. */
  maxWritePauseMs(): number;
  stop(): Promise<void>;
  /** After stop(): the retrying clients' figures with the plain ones' (`nonRetrying`) and Porcupine's verdict. */
  verify(endpoint: string): Promise<ClientFigures>;
}

export async function startSwitchLoad(options: {
  env: Environment;
  state: LocalState;
  load: LoadPlan;
  log: Logger;
  userPrefix?: string;
}): Promise<SwitchLoad> {
  const { env, state, log } = options;
  const [host, port] = state.dnsServer.split(':');
  const history = new History();
  const prefix = options.userPrefix ?? randomUUID().slice(0, 8);
  const common: Omit<ClientLoadOptions, 'users' | 'writesPerSecond'> = {
    recordName: env.recordName,
    resolver: { host: host!, port: Number(port) },
    servicePort: Number(env.parameters.port),
    jwtSecret: resolveSecret(env.jwtSecret),
    maxDurationMs: options.load.maxDurationMs ?? 15 * 60_000,
    heartbeatMs: env.smoke.heartbeatMs,
    history,
    log,
  };
  const retrying: ClientLoad = await startClientLoad({
    ...common,
    users: options.load.users,
    writesPerSecond: options.load.writesPerSecond,
    userPrefix: `load-${prefix}`,
  });
  const plainPlan = options.load.nonRetrying ?? { users: 20, writesPerSecond: 20 };
  const plain: ClientLoad = await startClientLoad({
    ...common,
    ...plainPlan,
    retrying: false,
    userPrefix: `plain-${prefix}`,
  }).catch(async (err: unknown) => {
    await retrying.stop();
    throw err;
  });
  return {
    history,
    maxWritePauseMs: () => Math.max(retrying.figures().maxWritePauseMs ?? 0, plain.figures().maxWritePauseMs ?? 0),
    stop: async () => {
      await Promise.all([retrying.stop(), plain.stop()]);
    },
    verify: async (endpoint) => {
      const clients = await retrying.verify(endpoint);
      clients.nonRetrying = await plain.verify(endpoint);
      clients.linearizability = await checkLinearizability(history).catch((err: unknown) => {
        log.warn({ err }, 'linearizability check did not run');
        return {
          ok: false,
          result: 'Skipped' as const,
          operations: history.operations.length,
          keys: 0,
          violations: [],
          detail: (err as Error).message,
        };
      });
      return clients;
    },
  };
}

/**
 * One switch of `env` while synthetic clients (startSwitchLoad) write, read and stream through the
 * public name. The clients keep going until they had time to follow the switch (TTL + two
 * heartbeats), then stop and check every acknowledged write against the stack DNS now points at.
 * The figures go into the report (its `clients`), which is written back to the reports folder.
 */
export async function switchUnderLoad(options: {
  client: Client;
  env: Environment;
  state: LocalState;
  load: LoadPlan;
  input?: Partial<SwitchInput>;
  log: Logger;
  /** Called once the switch has started, with its workflow id (drills act on it). */
  onStarted?: (workflowId: string) => Promise<void> | void;
}): Promise<SwitchUnderLoad> {
  const { client, env, state, log } = options;
  const load = await startSwitchLoad({ env, state, load: options.load, log });
  let stopped = false;
  try {
    // Let every client hold a stream and write a little on the old stack first.
    await sleep(Math.max(1_000, env.smoke.heartbeatMs));
    const input: SwitchInput = {
      env: env.name,
      backup: 'latest',
      trigger: 'manual',
      version: 'demo',
      ...options.input,
    };
    const started = Date.now();
    const handle = await client.workflow.start('stackSwitch', {
      ...switchStartOptions(input),
      taskQueue: TASK_QUEUE,
      args: [input],
    });
    log.info({ workflowId: handle.workflowId, runId: handle.firstExecutionRunId }, 'switch started under client load');
    await options.onStarted?.(handle.workflowId);
    let report: SwitchReport;
    try {
      report = await handle.result();
    } catch (err) {
      if (!(err instanceof WorkflowFailedError)) throw err;
      report = {
        env: env.name,
        workflowId: handle.workflowId,
        runId: handle.firstExecutionRunId,
        outcome: 'failed',
        reason: (err.cause ?? err).message,
        trigger: input.trigger,
        version: input.version,
        phases: [],
        smoke: { checks: [] },
        startedAt: new Date(started).toISOString(),
        finishedAt: new Date().toISOString(),
      };
    }
    const wallMs = Date.now() - started;
    // Clients follow on their own: the TTL runs out, or a drained stream says `reconnect`.
    await sleep(env.ttl * 1_000 + 2 * env.smoke.heartbeatMs);
    await load.stop();
    stopped = true;
    const ports = createPorts(env, log, state);
    const live = await ports.dns.current(env.recordName);
    const stack = live && (await ports.stacks.describe(live.stack));
    if (!stack?.outputs)
      throw new Error(
        `after the switch DNS points at ${live?.stack ?? 'nothing'}, which has no running stack to check the writes against`,
      );
    const clients = await load.verify(stack.outputs.endpoint);
    const full: SwitchReport = { ...report, clients };
    const reportsDir = join(state.dataDir, 'reports');
    mkdirSync(reportsDir, { recursive: true });
    writeFileSync(join(reportsDir, `${full.workflowId}.json`), JSON.stringify(full, null, 2) + '\n');
    // The clients' history beside it, so the checker's verdict can be reproduced: .tools/bin/linearizability FILE
    writeFileSync(join(reportsDir, `${full.workflowId}.history.json`), JSON.stringify(load.history));
    return { report: full, clients, targets: checkTargets(env, full, clients), wallMs };
  } finally {
    if (!stopped) await load.stop().catch(() => undefined);
  }
}

/** The targets of issue 5 a switch under load must meet. */
export function checkTargets(env: Environment, report: SwitchReport, clients: ClientFigures): TargetCheck[] {
  const reconnectBound = env.ttl * 1_000 + env.smoke.heartbeatMs;
  return [
    {
      name: 'switched',
      ok: report.outcome === 'switched',
      detail: report.outcome + (report.reason ? `: ${report.reason}` : ''),
    },
    {
      name: 'no failed requests',
      ok: clients.failedRequests === 0,
      detail: `${clients.failedRequests} of ${clients.requests} failed after retries`,
    },
    ...(clients.nonRetrying
      ? [
          {
            name: 'no failed requests for clients that never retry',
            ok: clients.nonRetrying.failedRequests === 0,
            detail:
              `${clients.nonRetrying.failedRequests} of ${clients.nonRetrying.requests} failed; longest write pause ` +
              `${clients.nonRetrying.maxWritePauseMs ?? 0} ms (retrying clients: ${clients.maxWritePauseMs ?? 0} ms)`,
          },
        ]
      : []),
    ...(clients.linearizability
      ? [
          {
            name: 'Porcupine: per-key linearizable',
            ok: clients.linearizability.ok,
            detail: linearizabilityDetail(clients.linearizability),
          },
        ]
      : []),
    {
      name: 'no lost writes',
      ok: clients.writesLost === 0,
      detail: `${clients.writesLost} of ${clients.writesAcknowledged} acknowledged writes missing`,
    },
    {
      name: 'no missed events',
      ok: clients.missedEvents === 0,
      detail: `${clients.missedEvents} missed, ${clients.duplicateEvents} duplicate`,
    },
    {
      name: 'streams on the new stack within TTL + one heartbeat',
      ok: clients.maxReconnectMs <= reconnectBound,
      detail: `${clients.streams} streams, ${clients.streamsReconnected} reconnections after a loss, slowest ${clients.maxReconnectMs} ms (bound ${reconnectBound} ms)`,
    },
  ];
}

function linearizabilityDetail(verdict: NonNullable<ClientFigures['linearizability']>): string {
  const { result, operations, keys, violations, detail } = verdict;
  const found = violations.length ? `; violations: ${violations.slice(0, 5).join(', ')}` : '';
  return `${result} over ${operations} operations on ${keys} items${found}${detail ? ` (${detail})` : ''}`;
}
