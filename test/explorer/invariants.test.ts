/**
 * The invariant checker itself (test/support/invariants.ts): each invariant is reported when a world
 * breaks it and not when the world keeps it, so the fault explorer's silence means something.
 */
import { describe, expect, it } from 'vitest';
import {
  checkEnd,
  checkStep,
  compareRevisions,
  type StackSnapshot,
  type WorldSnapshot,
} from '../support/invariants.ts';

const NOW = 1_000_000;
const LEASE = 60_000;

function stack(name: string, fields: Partial<StackSnapshot> = {}): StackSnapshot {
  return {
    name,
    deleted: false,
    nodes: [{ mode: 'open' }, { mode: 'open' }],
    smoke: 'passed',
    everLive: false,
    items: {},
    ...fields,
  };
}

/** Blue forwards to green, DNS on green, every write on green: a good end of a switch. */
function switched(fields: Partial<WorldSnapshot> = {}): WorldSnapshot {
  return {
    now: NOW,
    leaseMs: LEASE,
    keepStacks: 1,
    dns: 'green',
    stacks: [
      stack('blue', {
        everLive: true,
        nodes: [
          { mode: 'forwarding', forwardTo: 'green' },
          { mode: 'forwarding', forwardTo: 'green' },
        ],
        items: { a: '1-x' },
      }),
      stack('green', { everLive: true, createdBy: 'switch-1', items: { a: '2-y' } }),
    ],
    writes: [
      { id: 'a', rev: '1-x', stack: 'blue', at: NOW - 10 },
      { id: 'a', rev: '2-y', stack: 'green', at: NOW - 5 },
    ],
    runs: [{ workflowId: 'switch-1', kind: 'switch', state: 'closed', reported: true, acted: true }],
    flips: [{ at: NOW - 8, from: 'blue', to: 'green', fromMode: 'forwarding' }],
    ...fields,
  };
}
const invariants = (violations: Array<{ invariant: string }>) => [...new Set(violations.map((v) => v.invariant))];

describe('the invariant checker', () => {
  it('finds nothing wrong with a clean switch', () => {
    expect(checkEnd(switched())).toEqual([]);
  });

  it('I1: two stacks clients reach both acknowledging writes, one open node being enough', () => {
    const world = switched();
    world.stacks[0]!.nodes = [{ mode: 'fenced', leaseLeftMs: 1 }, { mode: 'open' }];
    expect(invariants(checkStep(world))).toEqual(['I1']);
    // A stack clients were never sent to may be open (a new stack being smoke-tested).
    world.stacks[0]!.everLive = false;
    expect(checkStep(world)).toEqual([]);
  });

  it('I2: a fence without a lease or longer than it, a DNS change with less than half the lease left, a live stack refusing writes at the end', () => {
    const noLease = switched();
    noLease.stacks[0]!.nodes = [{ mode: 'fenced' }, { mode: 'fenced' }];
    expect(invariants(checkStep(noLease))).toEqual(['I2']);
    const late = switched({
      flips: [{ at: NOW, from: 'blue', to: 'green', fromMode: 'fenced', fromLeaseLeftMs: LEASE / 2 - 1 }],
    });
    expect(invariants(checkStep(late))).toEqual(['I2']);
    const stuck = switched();
    stuck.stacks[1]!.nodes = [{ mode: 'forwarding', forwardTo: 'gone' }, { mode: 'open' }];
    expect(invariants(checkEnd(stuck))).toEqual(['I2']);
  });

  it('I3: an acknowledged write missing on the live stack, or older there; mid-run, one held only by deleted stacks', () => {
    expect(invariants(checkEnd(switched({ writes: [{ id: 'b', rev: '1-a', stack: 'blue', at: NOW }] })))).toEqual([
      'I3',
    ]);
    // Same generation, lower nonce on the live stack: the acknowledged write was dropped.
    expect(invariants(checkEnd(switched({ writes: [{ id: 'a', rev: '2-z', stack: 'blue', at: NOW }] })))).toEqual([
      'I3',
    ]);
    const deleted = switched({ writes: [{ id: 'c', rev: '1-a', stack: 'blue', at: NOW }] });
    deleted.stacks[0] = { ...deleted.stacks[0]!, deleted: true, items: { c: '1-a' } };
    expect(invariants(checkStep(deleted))).toEqual(['I3']);
    expect(compareRevisions('2-a', '10-a')).toBe(-1);
    // DNS still on a stack that forwards every request: the writes are where it forwards to.
    const forwarded = switched({ dns: 'blue' });
    forwarded.stacks[0]!.items = {};
    expect(checkEnd(forwarded)).toEqual([]);
  });

  it('I4: DNS on a deleted stack or on one that failed or skipped its smoke checks', () => {
    const deleted = switched();
    deleted.stacks[1]!.deleted = true;
    expect(invariants(checkStep(deleted))).toContain('I4');
    const unsmoked = switched();
    unsmoked.stacks[1]!.smoke = 'not-run';
    expect(invariants(checkStep(unsmoked))).toEqual(['I4']);
  });

  it('I5: a stack of a closed run that never served, unless kept on purpose; more previous live stacks than keepStacks', () => {
    const orphan = switched();
    orphan.stacks.push(stack('blue-2', { createdBy: 'switch-1' }));
    expect(invariants(checkEnd(orphan))).toEqual(['I5']);
    orphan.runs[0]!.keepFailed = true;
    expect(checkEnd(orphan)).toEqual([]);
    const many = switched();
    many.stacks.push(
      stack('green-0', {
        everLive: true,
        nodes: [
          { mode: 'forwarding', forwardTo: 'blue' },
          { mode: 'forwarding', forwardTo: 'blue' },
        ],
      }),
    );
    expect(invariants(checkEnd(many))).toEqual(['I5']);
  });

  it('I6: a closed run without its report; two runs acting on the environment at once', () => {
    expect(
      invariants(
        checkEnd(
          switched({ runs: [{ workflowId: 's', kind: 'switch', state: 'closed', reported: false, acted: true }] }),
        ),
      ),
    ).toEqual(['I6']);
    const both = switched({
      runs: [
        { workflowId: 's', kind: 'switch', state: 'running', reported: false, acted: true },
        { workflowId: 'r', kind: 'rollback', state: 'running', reported: false, acted: true },
      ],
    });
    expect(invariants(checkStep(both))).toEqual(['I6']);
  });
});
