/**
 * A stack's role (src/switch/roles.ts), as a decision table: every combination of what DNS names
 * and what two stacks say of their fence and drain is looked up in the table (first row that
 * matches), and stackRoles must answer as that row says. Then what may go (garbageOf,
 * stacksToDelete).
 */
import { describe, expect, it } from 'vitest';
import type { DnsRecordState, StackDescription } from '../../src/cloud/ports.ts';
import {
  forwardsEveryRequestTo,
  garbageOf,
  stackRoles,
  stacksToDelete,
  type Observation,
  type ObservedState,
} from '../../src/switch/roles.ts';

function stack(
  name: string,
  createdDay: number,
  status: StackDescription['status'] = 'ready',
  address = `10.0.0.${createdDay}`,
): StackDescription {
  return {
    name,
    env: 'test',
    colour: 'blue',
    workflowId: 'switch-test',
    status,
    rawStatus: status === 'ready' ? 'CREATE_COMPLETE' : 'ROLLBACK_COMPLETE',
    createdAt: new Date(Date.UTC(2026, 0, createdDay)).toISOString(),
    ...(status === 'ready'
      ? {
          outputs: {
            endpoint: `http://${name}:8080`,
            adminUrl: `http://${name}:9090`,
            nodes: [],
            dnsTarget: { kind: 'a', addresses: [address] },
          },
        }
      : {}),
  };
}

const names = (stacks: StackDescription[]) => stacks.map((s) => s.name).sort();

// ---------------------------------------------------------------- the decision table

/** A (newer) and B (older) are ready; F failed while it was created (no outputs). */
const A = stack('A', 5);
const B = stack('B', 3);
const F = stack('F', 6, 'failed');

const DNS = ['none', 'A', 'A by target', 'F', 'stranger'] as const;
const A_FENCE = ['open', 'fenced', '→B', 'silent'] as const;
const B_FENCE = ['open', '→A', 'silent'] as const;
const DRAINED = [true, false] as const;

type Dns = (typeof DNS)[number];
type AFence = (typeof A_FENCE)[number];
type BFence = (typeof B_FENCE)[number];
interface Case {
  dns: Dns;
  a: AFence;
  b: BFence;
  aDrained: boolean;
  bDrained: boolean;
}

const RECORDS: Record<Dns, DnsRecordState | null> = {
  none: null,
  A: { recordName: 'sync.test.', ttl: 30, stack: 'A', target: A.outputs!.dnsTarget },
  // No ownership record: the target alone says where clients go.
  'A by target': { recordName: 'sync.test.', ttl: 30, stack: '', target: { kind: 'a', addresses: ['10.0.0.5'] } },
  F: { recordName: 'sync.test.', ttl: 30, stack: 'F', target: { kind: 'a', addresses: ['10.0.0.6'] } },
  stranger: {
    recordName: 'sync.test.',
    ttl: 30,
    stack: 'navcloud-other-blue-1',
    target: { kind: 'a', addresses: ['10.9.9.9'] },
  },
};

function observation(c: Case): Observation {
  const states: Record<string, ObservedState> = {};
  const silent: Record<string, string> = {};
  const state = (name: string, fence: string, draining: boolean) => {
    if (fence === 'silent') silent[name] = 'connect ECONNREFUSED';
    else {
      const to = fence === '→A' ? A : fence === '→B' ? B : undefined;
      states[name] = {
        fence: to
          ? { mode: 'forwarding', epoch: 3, forwardTo: to.outputs!.endpoint }
          : { mode: fence as 'open' | 'fenced', epoch: 2 },
        draining,
        cursor: `c-${name}`,
      };
    }
  };
  state('A', c.a, c.aDrained);
  state('B', c.b, c.bDrained);
  return { record: RECORDS[c.dns], stacks: [F, A, B], states, silent };
}

/** What a row asks of a case: any of the values listed (a missing column matches anything). */
interface When {
  dns?: Dns[];
  a?: AFence[];
  b?: BFence[];
  aDrained?: boolean;
  bDrained?: boolean;
}
interface Then {
  live?: string;
  writer?: string;
  previous?: string;
}

const LIVE_A: Dns[] = ['A', 'A by target'];
const NO_LIVE: Dns[] = ['none', 'stranger'];
const ANSWERS_A: AFence[] = ['open', 'fenced', '→B'];
const ANSWERS_B: BFence[] = ['open', '→A'];

/** First match wins. */
const TABLE: Array<[When, Then, string]> = [
  [
    { dns: LIVE_A, a: ['→B'] },
    { live: 'A', writer: 'B', previous: 'B' },
    'DNS names a stack that forwards: B takes the writes, and a rollback finishes the move to it (two stacks forwarding to each other: the one DNS names committed to the other)',
  ],
  [
    { dns: LIVE_A, b: ANSWERS_B, bDrained: true },
    { live: 'A', writer: 'A', previous: 'B' },
    'a switch drained B: it served clients before A',
  ],
  [
    { dns: LIVE_A },
    { live: 'A', writer: 'A' },
    'B was never drained (kept after a failed switch) or says nothing: no previous stack',
  ],
  [
    { dns: ['F'], a: ANSWERS_A, aDrained: true },
    { live: 'F', writer: 'F', previous: 'A' },
    'DNS names a stack without outputs: it is live all the same; the newest drained stack is previous',
  ],
  [{ dns: ['F'], b: ANSWERS_B, bDrained: true }, { live: 'F', writer: 'F', previous: 'B' }, 'the same, A not drained'],
  [{ dns: ['F'] }, { live: 'F', writer: 'F' }, 'nothing drained'],
  [
    { dns: NO_LIVE, a: ANSWERS_A, aDrained: true },
    { previous: 'A' },
    'no live stack: the newest drained stack is still where a rollback would return',
  ],
  [{ dns: NO_LIVE, b: ANSWERS_B, bDrained: true }, { previous: 'B' }, 'the same, A not drained'],
  [{}, {}, 'no live stack, nothing drained'],
];

function matches(when: When, c: Case): boolean {
  return (
    (!when.dns || when.dns.includes(c.dns)) &&
    (!when.a || when.a.includes(c.a)) &&
    (!when.b || when.b.includes(c.b)) &&
    (when.aDrained === undefined || when.aDrained === c.aDrained) &&
    (when.bDrained === undefined || when.bDrained === c.bDrained)
  );
}

const CASES: Case[] = DNS.flatMap((dns) =>
  A_FENCE.flatMap((a) =>
    B_FENCE.flatMap((b) =>
      DRAINED.flatMap((aDrained) => DRAINED.map((bDrained) => ({ dns, a, b, aDrained, bDrained }))),
    ),
  ),
);

describe('stackRoles', () => {
  it(`answers every one of the ${CASES.length} combinations as the decision table says`, () => {
    const used = new Set<number>();
    const wrong: string[] = [];
    for (const c of CASES) {
      const row = TABLE.findIndex(([when]) => matches(when, c));
      used.add(row);
      const roles = stackRoles(observation(c));
      const answer: Then = {
        ...(roles.live ? { live: roles.live.name } : {}),
        ...(roles.writer ? { writer: roles.writer.name } : {}),
        ...(roles.previous ? { previous: roles.previous.name } : {}),
      };
      if (JSON.stringify(answer) !== JSON.stringify(TABLE[row]![1]))
        wrong.push(
          `${JSON.stringify(c)}: ${JSON.stringify(answer)}, row ${row + 1} (${TABLE[row]![2]}) says ${JSON.stringify(TABLE[row]![1])}`,
        );
    }
    expect(wrong).toEqual([]);
    // Every row decides some combination: none is dead.
    expect([...used].sort()).toEqual(TABLE.map((_, i) => i));
  });

  it('says, for every combination, which stack forwards to which', () => {
    for (const c of CASES) {
      expect(stackRoles(observation(c)).forwardsTo, JSON.stringify(c)).toEqual({
        ...(c.a === '→B' ? { A: 'B' } : {}),
        ...(c.b === '→A' ? { B: 'A' } : {}),
      });
    }
  });

  it('follows forwards a few hops, and not to a stack of another environment', () => {
    const C = stack('C', 1);
    const forwarding = (to: string): ObservedState => ({
      fence: { mode: 'forwarding', epoch: 4, forwardTo: to },
      draining: true,
      cursor: '',
    });
    const seen: Observation = {
      record: RECORDS.A,
      stacks: [A, B, C],
      states: {
        A: forwarding(B.outputs!.endpoint),
        B: forwarding(C.outputs!.endpoint),
        C: { fence: { mode: 'open', epoch: 1 }, draining: false, cursor: '' },
      },
    };
    expect(stackRoles(seen)).toMatchObject({
      live: { name: 'A' },
      writer: { name: 'C' },
      previous: { name: 'C' },
      forwardsTo: { A: 'B', B: 'C' },
    });
    seen.states.B = forwarding('https://elsewhere.example');
    expect(stackRoles(seen)).toMatchObject({ writer: { name: 'B' }, forwardsTo: { A: 'B' } });
  });

  it('finds the live stack by its target when the ownership record names a stack without outputs', () => {
    const seen: Observation = {
      record: { ...RECORDS.F!, target: A.outputs!.dnsTarget },
      stacks: [F, A, B],
      states: {},
    };
    expect(stackRoles(seen)).toMatchObject({ live: { name: 'A' }, writer: { name: 'A' } });
  });
});

describe('forwardsEveryRequestTo', () => {
  it("is true only for a forwarding fence naming the stack's endpoint", () => {
    expect(forwardsEveryRequestTo({ mode: 'forwarding', forwardTo: A.outputs!.endpoint }, A)).toBe(true);
    expect(forwardsEveryRequestTo({ mode: 'forwarding', forwardTo: B.outputs!.endpoint }, A)).toBe(false);
    expect(forwardsEveryRequestTo({ mode: 'fenced', forwardTo: A.outputs!.endpoint }, A)).toBe(false);
    expect(forwardsEveryRequestTo({ mode: 'forwarding', forwardTo: A.outputs!.endpoint }, F)).toBe(false);
    expect(forwardsEveryRequestTo(undefined, A)).toBe(false);
  });
});

// ---------------------------------------------------------------- what may go

describe('stacksToDelete', () => {
  const live = stack('live', 10);
  const previous = stack('previous', 5);
  const keptFailed = stack('kept-failed', 8);
  const failed = stack('failed', 9, 'failed');
  const owned = stack('owned', 11, 'creating');

  it('keeps the previous live stack first, whatever is newer', () => {
    expect(
      names(
        stacksToDelete([live, previous, keptFailed, failed, owned], {
          live: 'live',
          owned: ['owned'],
          previous: 'previous',
          keepStacks: 1,
        }),
      ),
    ).toEqual(['failed', 'kept-failed']);
  });

  it('fills further kept places with ready stacks, newest first; failed ones never take a place', () => {
    expect(
      names(
        stacksToDelete([live, previous, keptFailed, failed], {
          live: 'live',
          owned: [],
          previous: 'previous',
          keepStacks: 5,
        }),
      ),
    ).toEqual(['failed']);
    expect(names(stacksToDelete([live, previous, keptFailed], { live: 'live', owned: [], keepStacks: 1 }))).toEqual([
      'previous',
    ]);
  });

  it('never deletes the live stack or an owned one, even with nothing kept', () => {
    expect(names(stacksToDelete([live, previous, owned], { live: 'live', owned: ['owned'], keepStacks: 0 }))).toEqual([
      'previous',
    ]);
  });
});

describe('garbageOf', () => {
  const old = stack('old', 1);
  const mine = stack('mine', 7, 'creating');

  it('never deletes the writer, even with nothing kept, when DNS names a stack that forwards to it', () => {
    const seen = observation({ dns: 'A', a: '→B', b: 'open', aDrained: false, bDrained: false });
    seen.stacks.push(old);
    expect(names(garbageOf(seen, stackRoles(seen), { owned: [], keepStacks: 0 }))).toEqual(['F', 'old']);
  });

  it('keeps the previous stack first, then ready ones newest first; spares what a running run owns', () => {
    const seen = observation({ dns: 'A', a: 'open', b: 'open', aDrained: false, bDrained: true });
    seen.stacks.push(old, mine);
    expect(names(garbageOf(seen, stackRoles(seen), { owned: ['mine'], keepStacks: 1 }))).toEqual(['F', 'old']);
    expect(names(garbageOf(seen, stackRoles(seen), { owned: [], keepStacks: 0 }))).toEqual(['B', 'F', 'mine', 'old']);
  });
});
