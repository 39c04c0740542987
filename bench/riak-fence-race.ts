/**
 * `npm run bench:riak-fence-race`: how often two changes of a Riak fence that expect the same
 * epoch, sent at once to two different nodes of a real cluster, are both answered as applied (Riak
 * has no compare-and-set over HTTP: `If-Match` is checked by each coordinating node), and what the
 * fence settles on then (server/store/riak/fence.ts resolves toward the more restrictive change).
 * Each round fences a fresh bucket, then races a renewal (node A) against a commit (node B).
 * BENCH_RIAK_URLS names the nodes (default the lead's cluster's first two HTTP ports),
 * BENCH_ROUNDS the rounds (default 50). Figures are printed, never asserted.
 */
import { randomBytes } from 'node:crypto';
import pino from 'pino';
import { openRiakStore } from '../server/store/riak/store.ts';

const [urlA, urlB] = (process.env.BENCH_RIAK_URLS ?? 'http://127.0.0.1:10018,http://127.0.0.1:10028').split(',');
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 50);
const logger = pino({ level: 'silent' });

const outcomes = { bothApplied: 0, commitOnly: 0, renewalOnly: 0, neither: 0 };
const settled = { forwarding: 0, fenced: 0, open: 0 };
for (let round = 0; round < ROUNDS; round += 1) {
  const bucket = `fence-race-${randomBytes(6).toString('hex')}`;
  const [a, b] = await Promise.all(
    [urlA, urlB].map((url) =>
      openRiakStore(`${url}?bucket=${bucket}&r=quorum&pr=quorum&w=all&pw=quorum&dw=quorum`, { logger }),
    ),
  );
  try {
    const fenced = await a!.fence({ expected: { epoch: 0, mode: 'open' }, by: 'bench/fence', leaseMs: 60_000 });
    await b!.fenceState();
    const expected = { epoch: fenced.epoch, mode: 'fenced' as const };
    const [renewal, commit] = await Promise.allSettled([
      a!.fence({ expected, by: 'bench/late-renewal', leaseMs: 60_000 }),
      b!.forward({ expected, by: 'bench/commit', to: 'http://new.example:7070', cursor: fenced.seq }),
    ]);
    const applied = [renewal.status === 'fulfilled', commit.status === 'fulfilled'];
    if (applied[0] && applied[1]) outcomes.bothApplied += 1;
    else if (applied[1]) outcomes.commitOnly += 1;
    else if (applied[0]) outcomes.renewalOnly += 1;
    else outcomes.neither += 1;
    settled[(await a!.fenceState()).mode] += 1;
  } finally {
    await Promise.all([a!.close(), b!.close()]);
  }
}
console.log(`riak fence race over ${ROUNDS} rounds (renewal at ${urlA}, commit at ${urlB}, both expecting one epoch):`);
console.log(
  `  answered as applied: both ${outcomes.bothApplied}, only the commit ${outcomes.commitOnly}, only the renewal ${outcomes.renewalOnly}, neither ${outcomes.neither}`,
);
console.log(`  the fence settled on: forwarding ${settled.forwarding}, fenced ${settled.fenced}, open ${settled.open}`);
