/**
 * On the real three-node Riak cluster (test/support/riak-cluster.ts): the catch-up drill with one
 * Riak node killed (then started), stopped cleanly (then started) and frozen (then thawed), each
 * node and moment drawn from a seed. Every write a sync node acknowledged must be in some export.
 * RIAK_DRILL_SEED replays a run; bench/riak-faults.ts runs the same drill many times per fault.
 */
import { describe, expect, it } from 'vitest';
import { runExportDrill } from '../support/export-drill.ts';
import { clusterRunning, onCluster, FAULT_KINDS, waitSettled, type ClusterNode } from '../support/riak-cluster.ts';
import { seeded } from '../support/seeded.ts';

const seed = Number(process.env.RIAK_DRILL_SEED ?? 20261204);

describe.runIf(clusterRunning)(
  onCluster(`the catch-up on the real Riak cluster under one node's fault (seed ${seed})`),
  () => {
    const random = seeded(seed);
    for (const kind of FAULT_KINDS) {
      const node = (1 + Math.floor(random() * 3)) as ClusterNode;
      const atMs = Math.round(2_000 + random() * 6_000);
      const forMs = Math.round(4_000 + random() * 6_000);
      it(`misses no acknowledged write: ${kind} dev${node} at ${atMs} ms for ${forMs} ms`, async () => {
        // The first drill starts on a settled ring; the next ones while the last fault's handoffs may be pending.
        await waitSettled({ handoffs: 'pending' });
        const result = await runExportDrill({ fault: { kind, node, atMs, forMs }, writeMs: 14_000, passes: 4 });
        console.log(
          `${kind} dev${node}: ${result.acknowledged} acknowledged, ${result.refused} refused, ${result.missed.length} in no export\n  ${result.events.join('\n  ')}`,
        );
        expect(result.acknowledged).toBeGreaterThan(0);
        expect(result.missed).toEqual([]);
      }, 420_000);
    }
  },
);
