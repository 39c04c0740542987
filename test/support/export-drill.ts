/**
 * The catch-up of a switch on a real Riak cluster, under a fault: two sync node processes on two
 * different Riak nodes, writers on both, exports chained cursor to cursor while they write, one
 * Riak node struck (killed, stopped or frozen) at a seeded moment and brought back later, then a
 * fence and the last export from the last cursor. Every write a sync node acknowledged must be in
 * some export. Used by test/riak/cluster-export.test.ts and bench/riak-faults.ts.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { signToken } from '../../src/navcloud/token.ts';
import { freePort, waitForPort } from '../../src/net.ts';
import { APP_STACK_QUORUMS, nodeHttp, strike, type ClusterNode, type FaultKind } from './riak-cluster.ts';

const SECRET = 'drill-secret-0123456789abcdef-0123456789';
const bin = resolve(import.meta.dirname, '../../bin/navcloud-sync.js');

export interface DrillOptions {
  fault?: { kind: FaultKind; node: ClusterNode; atMs: number; forMs: number };
  /** How long the writers write (default 24 s). */
  writeMs?: number;
  writers?: number;
  /** Export passes while the writers write (default 6). */
  passes?: number;
  /** The store URL's quorum parameters (default: the app stack's). */
  quorums?: string;
  log?: (line: string) => void;
}

export interface DrillResult {
  acknowledged: number;
  refused: number;
  exported: number;
  /** Acknowledged writes that no export contained: the number the promise says is 0. */
  missed: string[];
  exportsFailed: number;
  /** What the fault did, in order, with milliseconds since the writers started. */
  events: string[];
}

interface SyncNode {
  url: string;
  child: ChildProcess;
}

async function startSyncNode(store: string, nodeId: string): Promise<SyncNode> {
  const port = await freePort();
  const child = spawn(process.execPath, [bin], {
    env: {
      PATH: process.env.PATH,
      LOG_LEVEL: 'error',
      PORT: String(port),
      SYNC_JWT_SECRET: SECRET,
      SYNC_STORE: store,
      SYNC_NODE_ID: nodeId,
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  await waitForPort('127.0.0.1', port, 30_000, nodeId);
  return { url: `http://127.0.0.1:${port}`, child };
}

async function stopSyncNode(node: SyncNode): Promise<void> {
  if (node.child.exitCode !== null || node.child.signalCode !== null) return;
  const exited = once(node.child, 'exit');
  node.child.kill('SIGTERM');
  await exited;
}

async function exportFrom(
  node: SyncNode,
  token: string,
  since: string | undefined,
): Promise<{ ids: string[]; cursor: string }> {
  const answer = await fetch(`${node.url}/admin/export${since ? `?since=${since}` : ''}`, {
    headers: { authorization: `Bearer ${token}` },
    signal: AbortSignal.timeout(120_000),
  });
  const text = await answer.text();
  if (answer.status !== 200)
    throw new Error(`export from ${node.url} answered ${answer.status}: ${text.slice(0, 200)}`);
  const lines = text
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as { kind: string; id: string; cursor: string });
  const end = lines.at(-1);
  if (end?.kind !== 'end') throw new Error(`export from ${node.url} ended without its end line`);
  return { ids: lines.filter((line) => line.kind === 'item').map((line) => line.id), cursor: end.cursor };
}

/** An export, through whichever sync node can serve it: one whose Riak node is struck cannot. */
async function exportAny(
  nodes: SyncNode[],
  token: string,
  since: string | undefined,
  first: number,
): Promise<{ ids: string[]; cursor: string }> {
  let lastError: unknown;
  for (let attempt = 0; attempt < 6; attempt++) {
    try {
      return await exportFrom(nodes[(first + attempt) % nodes.length]!, token, since);
    } catch (error) {
      lastError = error;
      await sleep(1_000);
    }
  }
  throw lastError;
}

export async function runExportDrill(options: DrillOptions = {}): Promise<DrillResult> {
  const writeMs = options.writeMs ?? 24_000;
  const writers = options.writers ?? 8;
  const passes = options.passes ?? 6;
  const log = options.log ?? (() => undefined);
  const bucket = `drill-${randomBytes(4).toString('hex')}`;
  const store = (node: ClusterNode) =>
    `riak:${nodeHttp(node)}?${options.quorums ?? APP_STACK_QUORUMS}&bucket=${bucket}`;
  // The sync nodes sit on the two Riak nodes the fault spares when it can, as two API nodes of a stack would.
  const riakNodes = ([1, 2, 3] as ClusterNode[]).filter((node) => node !== options.fault?.node).slice(0, 2);
  const nodes = [
    await startSyncNode(store(riakNodes[0]!), 'drill-a'),
    await startSyncNode(store(riakNodes[1]!), 'drill-b'),
  ];
  const admin = await signToken(SECRET, 'ops', { admin: true });
  const events: string[] = [];
  const started = Date.now();
  const note = (event: string) => {
    events.push(`${((Date.now() - started) / 1000).toFixed(1)} s ${event}`);
    log(events.at(-1)!);
  };
  const acknowledged: string[] = [];
  let refused = 0;
  let stopWriting = false;
  try {
    const writing = Array.from({ length: writers }, async (_, writer) => {
      const token = await signToken(SECRET, `user-${writer}`);
      for (let i = 0; !stopWriting; i++) {
        const id = `w${writer}-${i}`;
        try {
          const answer = await fetch(`${nodes[(writer + i) % 2]!.url}/v1/items/${id}`, {
            method: 'PUT',
            headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
            body: JSON.stringify({ type: 'trip', data: { writer, i } }),
            signal: AbortSignal.timeout(30_000),
          });
          await answer.arrayBuffer();
          if (answer.status === 201) acknowledged.push(id);
          else refused++;
        } catch {
          refused++;
        }
      }
    });

    const faulting = (async () => {
      if (!options.fault) return;
      const { kind, node, atMs, forMs } = options.fault;
      await sleep(atMs);
      note(`${kind} dev${node}`);
      const undo = await strike(kind, node);
      await sleep(forMs);
      note(`undoing ${kind} of dev${node}`);
      await undo();
      note(`dev${node} back`);
    })();

    const exported = new Set<string>();
    let cursor: string | undefined;
    let exportsFailed = 0;
    for (let pass = 0; pass < passes; pass++) {
      await sleep(Math.max(0, ((pass + 1) * writeMs) / passes - (Date.now() - started)));
      try {
        const found = await exportAny(nodes, admin, cursor, pass);
        found.ids.forEach((id) => exported.add(id));
        cursor = found.cursor;
        note(`export ${pass + 1}: ${found.ids.length} items, cursor ${found.cursor}`);
      } catch (error) {
        exportsFailed++;
        note(`export ${pass + 1} failed: ${(error as Error).message}`);
      }
    }
    stopWriting = true;
    await Promise.all(writing);
    await faulting;
    // The fence, then the last delta from the last cursor: what a switch copies last.
    for (let attempt = 0; ; attempt++) {
      const node = nodes[attempt % 2]!.url;
      const headers = { authorization: `Bearer ${admin}`, 'content-type': 'application/json' };
      // A change of the fence names the epoch and mode it expects: the ones this node reads now.
      const answer = await fetch(`${node}/admin/fence`, { headers })
        .then((now) => now.json() as Promise<{ epoch: number; mode: string }>)
        .then(({ epoch, mode }) =>
          fetch(`${node}/admin/fence`, {
            method: 'POST',
            headers,
            body: JSON.stringify({ expected: { epoch, mode }, by: 'drill', leaseSeconds: 300 }),
          }),
        )
        .catch(() => undefined);
      if (answer?.status === 200) break;
      if (attempt > 20) throw new Error(`no sync node could fence: ${answer?.status}`);
      await sleep(1_000);
    }
    note('fenced');
    const last = await exportAny(nodes, admin, cursor, 0);
    last.ids.forEach((id) => exported.add(id));
    note(`last export: ${last.ids.length} items, cursor ${last.cursor}`);
    const missed = acknowledged.filter((id) => !exported.has(id));
    return { acknowledged: acknowledged.length, refused, exported: exported.size, missed, exportsFailed, events };
  } finally {
    stopWriting = true;
    await Promise.all(nodes.map(stopSyncNode));
  }
}
