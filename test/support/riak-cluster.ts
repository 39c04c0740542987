/**
 * The real three-node Riak KV cluster of `../shared/riak/riakctl` (next to the checkout), for the
 * suites and drills that prove a claim about Riak on Riak itself. `.ci/run` starts it when riakctl
 * is there and says so in RIAK_CLUSTER; without it those suites are skipped with that reason.
 *
 * Faults are the real thing: `riakctl kill N` (SIGKILL of the node's VM), `riakctl stop-node N` (a
 * clean stop), and a freeze (SIGSTOP of the node's processes, SIGCONT to thaw), each undone by
 * `riakctl start-node N` or the thaw.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';

const run = promisify(execFile);

/** The app stack's quorums (infra/app-stack.yaml): what every claim about the cluster is made with. */
export const APP_STACK_QUORUMS = 'type=navcloud&counter_type=counters&r=quorum&pr=quorum&w=quorum&pw=quorum&dw=quorum';

export const CLUSTER_NODES = [1, 2, 3] as const;
export type ClusterNode = (typeof CLUSTER_NODES)[number];

/** riakctl's fixed ports: HTTP of node N is 10000 + 10 N + 8. */
export function nodeHttp(node: ClusterNode): string {
  return `http://127.0.0.1:${10_000 + 10 * node + 8}`;
}

/** The riakctl beside the checkout, or SWITCHYARD_RIAKCTL; undefined when there is none. */
export function riakctlPath(): string | undefined {
  const candidates = [process.env.SWITCHYARD_RIAKCTL, resolve(import.meta.dirname, '../../../shared/riak/riakctl')];
  return candidates.find((path): path is string => Boolean(path) && existsSync(path!));
}

/** Set by .ci/run (and by hand: RIAK_CLUSTER=1) once `riakctl cluster start` answered. */
export const clusterRunning = process.env.RIAK_CLUSTER === '1' && riakctlPath() !== undefined;
/** A suite's title, saying why it is skipped when the cluster is not there. */
export function onCluster(title: string): string {
  return clusterRunning
    ? title
    : `${title} (skipped: no real Riak cluster; start it with \`../shared/riak/riakctl cluster start\` and set RIAK_CLUSTER=1, as .ci/run does when riakctl is there)`;
}

export async function riakctl(...args: string[]): Promise<string> {
  const path = riakctlPath();
  if (!path) throw new Error('riakctl not found: set SWITCHYARD_RIAKCTL or put the shared folder beside the checkout');
  const { stdout } = await run(path, args, { timeout: 360_000, env: { ...process.env } });
  return stdout;
}

export type FaultKind = 'kill' | 'stop' | 'freeze';
export const FAULT_KINDS: readonly FaultKind[] = ['kill', 'stop', 'freeze'];

/** The OS processes of node N: its Erlang VM and the run_erl that supervises it. */
async function nodePids(node: ClusterNode): Promise<number[]> {
  const home = process.env.RIAK_HOME ?? '/tmp/switchyard-riak';
  try {
    const { stdout } = await run('pgrep', ['-f', `${home}/dev${node}/(bin/riak |erts-[0-9.]+/bin/(run_erl|beam))`]);
    return stdout.split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

async function signal(node: ClusterNode, name: 'SIGSTOP' | 'SIGCONT'): Promise<void> {
  const pids = await nodePids(node);
  if (pids.length === 0) throw new Error(`Riak node dev${node} has no processes to ${name}`);
  for (const pid of pids) process.kill(pid, name);
}

/** Strikes node N with the fault; the answer undoes it (starts the node again, or thaws it). */
export async function strike(kind: FaultKind, node: ClusterNode): Promise<() => Promise<void>> {
  switch (kind) {
    case 'kill':
      await riakctl('kill', String(node));
      return async () => void (await riakctl('start-node', String(node)));
    case 'stop':
      await riakctl('stop-node', String(node));
      return async () => void (await riakctl('start-node', String(node)));
    case 'freeze':
      await signal(node, 'SIGSTOP');
      return () => signal(node, 'SIGCONT');
  }
}

async function pings(node: ClusterNode): Promise<boolean> {
  try {
    const answer = await fetch(`${nodeHttp(node)}/ping`, { signal: AbortSignal.timeout(2_000) });
    return answer.ok;
  } catch {
    return false;
  }
}

/**
 * Waits until every node answers and, unless `handoffs` is 'pending', no handoff is pending. A
 * settled start measures one fault alone; a start with the last fault's handoffs pending (they wait
 * out Riak's vnode inactivity timeout, a minute or more here) strikes a cluster still repairing,
 * which the promise covers as well and which takes a third of the time. `onWait` hears what it
 * waits for, each time that changes (.ci/run prints it).
 */
export async function waitSettled(
  options: { handoffs?: 'settled' | 'pending'; timeoutMs?: number; onWait?: (what: string) => void } = {},
): Promise<void> {
  const timeoutMs = options.timeoutMs ?? 300_000;
  const deadline = Date.now() + timeoutMs;
  let waitingFor = '';
  for (;;) {
    const up = await Promise.all(CLUSTER_NODES.map(pings));
    let what = `nodes ${CLUSTER_NODES.filter((_, i) => !up[i]).join(', ')} do not answer`;
    if (up.every(Boolean)) {
      if (options.handoffs === 'pending') return;
      const transfers = await riakctl('transfers').catch(() => 'unknown');
      if (/No transfers active/.test(transfers) && !/waiting to handoff/.test(transfers)) return;
      what = `${transfers.match(/waiting to handoff/g)?.length ?? 0} nodes still hand off`;
    }
    if (what !== waitingFor) options.onWait?.((waitingFor = what));
    if (Date.now() > deadline)
      throw new Error(
        `the Riak cluster did not ${options.handoffs === 'pending' ? 'answer on every node' : 'settle'} within ${timeoutMs / 1000} s`,
      );
    await sleep(2_000);
  }
}
