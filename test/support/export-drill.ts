/**
 * The catch-up of a switch on a real Riak cluster, under a fault: two sync node processes on two
 * different Riak nodes, writers on both, exports chained cursor to cursor while they write, one
 * Riak node struck (killed, stopped or frozen) at a seeded moment and brought back later, then a
 * fence and the last export from the last cursor. Every write a sync node acknowledged must be in
 * some export. Used by test/riak/cluster-export.test.ts and bench/riak-faults.ts.
 */
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { signToken } from '../../src/navcloud/token.ts';
import { APP_STACK_QUORUMS, nodeHttp, strike, type ClusterNode, type FaultKind } from './riak-cluster.ts';
import { exportIds, startSyncProcess, stopSyncProcess, type SyncProcess } from './sync-process.ts';

const SECRET = 'drill-secret-0123456789abcdef-0123456789';

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

/** An export, through whichever sync node can serve it: one whose Riak node is struck cannot. */
async function exportAny(
  nodes: SyncProcess[],
  token: string,
  since: string | undefined,
  first: number,
): Promise<{ ids: string[]; cursor: string }> {
  let lastError: unknown;
  for (let attempt = 0; attempt < 6; attempt++) {
    try {
      return await exportIds(nodes[(first + attempt) % nodes.length]!, token, since);
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
    await startSyncProcess({ store: store(riakNodes[0]!), nodeId: 'drill-a', secret: SECRET }),
    await startSyncProcess({ store: store(riakNodes[1]!), nodeId: 'drill-b', secret: SECRET }),
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
    await Promise.all(nodes.map(stopSyncProcess));
  }
}
