/**
 * The short mode of `npm run chaos` inside `npm test`: three runs of seed 111 on SQLite — a
 * rollback with the DNS responder killed, a switch with Temporal frozen during the flip, a switch
 * with RabbitMQ and then a node of the new stack killed — each judged from outside: no lost write, a linearizable history, one writer by the
 * nodes' own journals, streams whole, and the environment recovered by itself within the bound.
 * The long mode is for people: `npm run chaos -- --runs 50 --seed S`.
 */
import { describe, expect, it } from 'vitest';
import { runChaos } from '../../src/chaos/chaos.ts';
import { describeFault } from '../../src/chaos/plan.ts';
import { createRootLogger } from '../../src/logging.ts';

describe('npm run chaos, short mode', () => {
  it(
    'keeps every promise through three runs with real faults',
    async () => {
      const lines: string[] = [];
      const summary = await runChaos({
        runs: 3,
        seed: 111,
        store: 'sqlite',
        out: (line) => lines.push(line),
        log: createRootLogger('chaos-test', { level: 'error' }),
      });
      expect(summary.results.map((r) => `${r.plan.action} ${r.plan.faults.map(describeFault).join('+')}`)).toEqual([
        'rollback dns:kill 2.6s@1.2s',
        'switch temporal:stop 2.0s@switching+1.3s',
        'switch node-new#1:kill 4.9s@6.1s+rabbitmq:kill 2.1s@0.4s',
      ]);
      const failures = summary.results.flatMap((r) =>
        r.verdicts.filter((v) => !v.ok).map((v) => `run ${r.plan.run} ${v.judge}: ${v.detail}`),
      );
      expect(failures, lines.join('\n')).toEqual([]);
      expect(summary.ok).toBe(true);
      // The one-writer judge had the nodes' own evidence: every run's clients were acknowledged, and a
      // switch that ended switched was acknowledged by both stacks, one after the other.
      for (const result of summary.results) {
        expect(result.evidence.acks.length, `run ${result.plan.run}`).toBeGreaterThan(0);
        if (result.plan.action === 'switch' && result.end === 'switched')
          expect(new Set(result.evidence.acks.map((a) => a.stack)).size).toBe(2);
      }
      // The output a person reads: one line per run, then the table per fault kind.
      expect(lines.filter((l) => /^#\d seed 111 /.test(l))).toHaveLength(3);
      expect(lines.join('\n')).toMatch(/^fault +runs +failed +lost writes/m);
    },
    15 * 60_000,
  );
});
