/**
 * Acknowledged writes that no export contained, on the real Riak cluster, for each fault (kill,
 * clean stop, freeze) of each of the three nodes: the catch-up drill of test/support/export-drill.ts
 * run RUNS times per fault and node, each fault at a seeded moment for a seeded time.
 *
 *   ../shared/riak/riakctl cluster start
 *   npx tsx bench/riak-faults.ts [--runs 5] [--seed 1] [--kinds kill,stop,freeze] [--nodes 1,2,3] [--baseline] [--handoffs-pending]
 *
 * --baseline runs one drill without a fault first. --handoffs-pending starts each drill once every
 * node answers, without waiting for the last fault's handoffs. Prints a line per run and a table at the end.
 */
import { parseArgs } from 'node:util';
import { runExportDrill, type DrillOptions, type DrillResult } from '../test/support/export-drill.ts';
import {
  FAULT_KINDS,
  riakctlPath,
  waitSettled,
  type ClusterNode,
  type FaultKind,
} from '../test/support/riak-cluster.ts';
import { seeded } from '../test/support/seeded.ts';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '5' },
    seed: { type: 'string', default: '1' },
    kinds: { type: 'string', default: FAULT_KINDS.join(',') },
    nodes: { type: 'string', default: '1,2,3' },
    baseline: { type: 'boolean', default: false },
    'handoffs-pending': { type: 'boolean', default: false },
    'write-ms': { type: 'string', default: '24000' },
    quorums: { type: 'string' },
  },
});
if (!riakctlPath()) {
  console.error(
    'riak-faults: riakctl not found beside the checkout (../shared/riak/riakctl) nor in SWITCHYARD_RIAKCTL',
  );
  process.exit(2);
}
const runs = Number(values.runs);
const writeMs = Number(values['write-ms']);
const kinds = values.kinds.split(',') as FaultKind[];
const nodes = values.nodes.split(',').map(Number) as ClusterNode[];
for (const kind of kinds)
  if (!FAULT_KINDS.includes(kind)) throw new Error(`--kinds: unknown fault ${kind}; known: ${FAULT_KINDS.join(', ')}`);

// The moments and lengths of the faults come from --seed alone.
const next = seeded(Number(values.seed));

interface Row {
  label: string;
  results: DrillResult[];
}
const rows: Row[] = [];

async function drill(label: string, fault: DrillOptions['fault']): Promise<DrillResult> {
  await waitSettled({ handoffs: values['handoffs-pending'] ? 'pending' : 'settled' });
  const result = await runExportDrill({ fault, writeMs, quorums: values.quorums });
  const faultText = fault
    ? `${fault.kind} dev${fault.node} at ${(fault.atMs / 1000).toFixed(1)} s for ${(fault.forMs / 1000).toFixed(1)} s`
    : 'no fault';
  console.log(
    `${label.padEnd(14)} ${faultText.padEnd(34)} acknowledged ${String(result.acknowledged).padStart(5)}  refused ${String(result.refused).padStart(5)} ` +
      ` missed ${result.missed.length}${result.missed.length ? ` (${result.missed.slice(0, 5).join(', ')}…)` : ''}  exports failed ${result.exportsFailed}`,
  );
  return result;
}

if (values.baseline) rows.push({ label: 'no fault', results: [await drill('no fault', undefined)] });
for (const kind of kinds) {
  for (const node of nodes) {
    const row: Row = { label: `${kind} dev${node}`, results: [] };
    for (let run = 0; run < runs; run++) {
      const atMs = Math.round(2_000 + next() * (writeMs / 2));
      const forMs = Math.round(4_000 + next() * 10_000);
      row.results.push(await drill(row.label, { kind, node, atMs, forMs }));
    }
    rows.push(row);
  }
}

console.log('\n| Fault | Runs | Acknowledged | Refused | Missed | Runs with a miss |');
console.log('|---|---|---|---|---|---|');
for (const { label, results } of rows) {
  const sum = (pick: (r: DrillResult) => number) => results.reduce((total, r) => total + pick(r), 0);
  console.log(
    `| ${label} | ${results.length} | ${sum((r) => r.acknowledged)} | ${sum((r) => r.refused)} ` +
      `| ${sum((r) => r.missed.length)} | ${results.filter((r) => r.missed.length > 0).length} |`,
  );
}
await waitSettled();
