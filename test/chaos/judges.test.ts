/**
 * The judges of `npm run chaos` (src/chaos/judges.ts) pass a clean run and fail each run whose
 * evidence breaks their property: a lost write, a history Porcupine refuses, two stacks
 * acknowledging at once or taking turns, a change missed or received twice, a run that did not
 * recover. Histories are judged by the real checker; the counts of lost writes and of missed or
 * doubled changes are the clients' own figures, whose counting test/load/client-load.test.ts shows.
 */
import { describe, expect, it } from 'vitest';
import { checkLinearizability, History } from '../../src/load/history.ts';
import {
  judgeRun,
  judgeOneWriter,
  writerChangesAllowed,
  type Acknowledgment,
  type RecoveryBound,
  type RunEvidence,
} from '../../src/chaos/judges.ts';
import type { ClientFigures } from '../../src/switch/contract.ts';

const bound: RecoveryBound = { closeMs: 240_000, writableMs: 20_000 };

const figures = (over: Partial<ClientFigures> = {}): ClientFigures => ({
  requests: 100,
  failedRequests: 0,
  writesAcknowledged: 50,
  writesLost: 0,
  streams: 4,
  streamsReconnected: 4,
  maxReconnectMs: 900,
  duplicateEvents: 0,
  missedEvents: 0,
  maxWritePauseMs: 400,
  ...over,
});

/** A: writes until the flip at t=1000, B after it: one hand-over. */
const switchAcks = (): Acknowledgment[] => [
  ...[100, 300, 500, 900].map((t, i) => ({ stack: 'A', id: `a${i}`, from: t, to: t + 5 })),
  ...[1200, 1400, 1600].map((t, i) => ({ stack: 'B', id: `b${i}`, from: t, to: t + 5 })),
];

async function cleanEvidence(): Promise<RunEvidence> {
  const history = new History();
  const c = history.newClient();
  history.record({ client: c, key: 'k', kind: 'write', value: 1, call: 0, return: 10 });
  history.record({ client: c, key: 'k', kind: 'read', value: 1, call: 20, return: 30 });
  return {
    action: 'switch',
    end: 'switched',
    closedAfterMs: 40_000,
    clients: {
      ...figures(),
      nonRetrying: figures({ failedRequests: 3 }),
      linearizability: await checkLinearizability(history),
    },
    acks: switchAcks(),
    journalsTruncated: false,
    probe: { ok: true, afterMs: 40, detail: 'taken' },
    leftovers: [],
  };
}

const failing = (evidence: RunEvidence) =>
  judgeRun(evidence, bound)
    .filter((v) => !v.ok)
    .map((v) => v.judge);

describe('the chaos judges', () => {
  it('pass a run that kept every promise (plain clients may see refusals)', async () => {
    expect(failing(await cleanEvidence())).toEqual([]);
  });

  it('fail a run with a lost write, of either kind of client', async () => {
    const evidence = await cleanEvidence();
    expect(failing({ ...evidence, clients: { ...evidence.clients, writesLost: 1 } })).toEqual(['lost writes']);
    expect(failing({ ...evidence, clients: { ...evidence.clients, nonRetrying: figures({ writesLost: 2 }) } })).toEqual(
      ['lost writes'],
    );
  });

  it('fail a history Porcupine finds not linearizable, or one it could not check', async () => {
    const history = new History();
    const [a, b] = [history.newClient(), history.newClient()];
    // b reads the old value after a's write was acknowledged: a stale read.
    history.record({ client: a, key: 'k', kind: 'write', value: 1, call: 0, return: 10 });
    history.record({ client: a, key: 'k', kind: 'write', value: 2, call: 20, return: 30 });
    history.record({ client: b, key: 'k', kind: 'read', value: 1, call: 40, return: 50 });
    const evidence = await cleanEvidence();
    const verdict = await checkLinearizability(history);
    expect(failing({ ...evidence, clients: { ...evidence.clients, linearizability: verdict } })).toEqual([
      'linearizable',
    ]);
    const { linearizability: _, ...unchecked } = evidence.clients;
    expect(failing({ ...evidence, clients: unchecked })).toEqual(['linearizable']);
  });

  it('fail two stacks acknowledging writes in overlapping intervals', async () => {
    const evidence = await cleanEvidence();
    // B's store call ran while A's was running: two writers at one moment, though only one change of writer.
    const acks = [...switchAcks(), { stack: 'B', id: 'early', from: 902, to: 903 }];
    expect(failing({ ...evidence, acks })).toEqual(['one writer']);
    expect(judgeOneWriter(acks, 1).detail).toContain('1 overlapping pairs, first a3 on A');
  });

  it('fail acknowledgments alternating between stacks more often than the run could hand over', async () => {
    const evidence = await cleanEvidence();
    const alternating = [...switchAcks(), { stack: 'A', id: 'late', from: 1300, to: 1301 }];
    expect(failing({ ...evidence, acks: alternating })).toEqual(['one writer']);
    // A switch that rolled back hands the writer back once: A, B, A is allowed then, not A, B, A, B.
    expect(
      judgeOneWriter(
        [...switchAcks(), { stack: 'A', id: 'back', from: 2000, to: 2001 }],
        writerChangesAllowed('switch', 'rolled-back'),
      ).ok,
    ).toBe(true);
    expect(judgeOneWriter(alternating, writerChangesAllowed('switch', 'rolled-back')).ok).toBe(false);
    expect(judgeOneWriter(switchAcks(), writerChangesAllowed('rollback', 'rolled-back')).ok).toBe(true);
  });

  it('fail a stream that missed a change or got one twice', async () => {
    const evidence = await cleanEvidence();
    expect(failing({ ...evidence, clients: { ...evidence.clients, missedEvents: 1 } })).toEqual(['streams']);
    expect(
      failing({ ...evidence, clients: { ...evidence.clients, nonRetrying: figures({ duplicateEvents: 1 }) } }),
    ).toEqual(['streams']);
  });

  it('fail a run that did not recover: stuck, too slow, not writable, or leaving a stack behind', async () => {
    const evidence = await cleanEvidence();
    expect(failing({ ...evidence, end: 'stuck', closedAfterMs: 240_001 })).toEqual(['recovered']);
    expect(failing({ ...evidence, end: 'terminated' })).toEqual(['recovered']);
    expect(failing({ ...evidence, probe: { ok: false, afterMs: 20_100, detail: '503 fenced' } })).toEqual([
      'recovered',
    ]);
    expect(failing({ ...evidence, probe: { ok: true, afterMs: 25_000, detail: 'taken' } })).toEqual(['recovered']);
    expect(failing({ ...evidence, leftovers: ['navcloud-dev-green-1 (failed)'] })).toEqual(['recovered']);
    // Failing cleanly is a recovery.
    expect(failing({ ...evidence, end: 'failed', acks: switchAcks().filter((a) => a.stack === 'A') })).toEqual([]);
  });
});
