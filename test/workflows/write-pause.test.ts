/**
 * How long writes are held, and what an undo copies (issue 18, items 6 and 9): the writes made
 * while a person approves are copied before the fence, the fence holds writes at most
 * maxWritePauseSeconds before the flip gives up, and a commit that was refused copies nothing
 * back into the live stack.
 */
import { describe, expect, it } from 'vitest';
import type { SwitchReport } from '../../src/switch/contract.ts';
import { approveUpdate } from '../../src/switch/contract.ts';
import type { FakeWorld } from '../support/fake-ports.ts';
import { untilPhase } from '../support/phase.ts';
import { OLD, runSwitch, seededWorld } from './harness.ts';
import { useTimeSkippingEnvironment } from './time-skipping-suite.ts';

const testEnv = useTimeSkippingEnvironment();
const newStackOf = (report: SwitchReport) => report.to!.stack;

describe('the write pause', () => {
  it('copies the writes made while a person approved before the fence: the fenced copy carries only what came after', async () => {
    let world!: FakeWorld;
    let fenced = false;
    const importedUnderFence: string[] = [];
    world = seededWorld({
      onStep: (what) => {
        if (what === `fence ${OLD}`) fenced = true;
        if (what.startsWith(`forward ${OLD} `)) fenced = false;
        const imported = /^import (\d+) lines into (\S+)$/.exec(what);
        if (fenced && imported && imported[2] !== OLD) {
          // The last lines the import added; a copy under the fence with nothing to copy still imports (the export's end line), 0 lines.
          const ids = world.state.imported[imported[2]!]!;
          importedUnderFence.push(...ids.slice(ids.length - Number(imported[1])));
        }
      },
    });
    const { report } = await runSwitch(testEnv(), {
      world,
      env: { approval: 'manual', catchUpFenceBelow: 10 },
      during: async (handle) => {
        await untilPhase(handle, 'awaiting-approval');
        // An hour of writes while the approver reads the release notes.
        world.write(OLD, 200, 'while-approving');
        await handle.executeUpdate(approveUpdate, { args: [{ by: 'alice', comment: 'go' }] });
      },
    });
    expect(report.outcome).toBe('switched');
    expect(world.itemIds(newStackOf(report)).filter((id) => id.startsWith('while-approving'))).toHaveLength(200);
    expect(importedUnderFence.filter((id) => id.startsWith('while-approving'))).toEqual([]);
  });

  it('gives up a flip whose copy under the fence outlasts maxWritePauseSeconds: the old stack is unfenced, DNS untouched, the switch fails', async () => {
    let smoked = false;
    let world!: FakeWorld;
    world = seededWorld({
      // Every import takes 1.5 s; the copy under the fence has one line to import, so it outlasts a 1 s write pause.
      importDelayMs: 1_500,
      onStep: (what) => {
        smoked ||= what.startsWith('smoke');
        if (smoked && what.startsWith('import') && !world.fenced(OLD)) world.write(OLD, 1, 'last');
      },
    });
    const { report } = await runSwitch(testEnv(), { world, env: { maxWritePauseSeconds: 1 } });
    expect(report.outcome).toBe('failed');
    expect(report.reason).toContain('maxWritePauseSeconds');
    expect(world.state.dns?.stack).toBe(OLD);
    expect(world.state.dnsChanges).toBe(0);
    expect(world.fenceOf(OLD)).toEqual(['open', 'open']);
    expect(world.state.calls).toContain(`unfence ${OLD}`);
    expect(world.state.calls.filter((call) => call.startsWith(`forward ${OLD}`))).toEqual([]);
  });
});

describe('a write the fence caught, undone under a number of its own (Riak)', () => {
  /** Each import takes `importDelayMs`; the new stack's lines and how often the old stack was fenced (taken or renewed). */
  async function switchOver(world: FakeWorld) {
    world.state.inFlightAtFence = 'undone';
    const { report } = await runSwitch(testEnv(), { world });
    const next = newStackOf(report);
    return { report, next, fences: world.state.calls.filter((call) => call === `fence ${OLD}`).length };
  }

  it('is settled on every node of the old stack before the fenced copy, which carries its undo: the commit goes through the first time', async () => {
    const world = seededWorld();
    const { report, next, fences } = await switchOver(world);
    expect(report.outcome).toBe('switched');
    // Taken, then renewed by the commit: one fenced copy.
    expect(fences).toBe(2);
    const calls = world.state.calls;
    const settled = world.stack(OLD).description.outputs!.nodes.map((node) => calls.indexOf(`settled ${node}`));
    expect(
      settled.every((at) => at > calls.indexOf(`fence ${OLD}`) && at < calls.indexOf(`forward ${OLD} to ${next}`)),
    ).toBe(true);
    expect(world.stack(next).items['shared-0']?.rev).toMatch(/-undo$/);
  });

  it('costs another fenced copy when the nodes cannot be asked to settle, and the write pause counts from the first fence', async () => {
    // Every import takes 300 ms: the pause holds two fenced copies' imports, not only the last one's.
    const world = seededWorld({ importDelayMs: 300 }).fail('admin.settled', { stack: OLD });
    const { report, next, fences } = await switchOver(world);
    expect(report.outcome).toBe('switched');
    expect(fences).toBe(4);
    expect(world.stack(next).items['shared-0']?.rev).toMatch(/-undo$/);
    expect(report.writePause?.fenceToForwardMs).toBeGreaterThanOrEqual(600);
  });
});

describe('a commit the old stack refused', () => {
  it('copies nothing back into the live stack: the writer never moved; its fence is released', async () => {
    let world!: FakeWorld;
    world = seededWorld({
      onStep: (what) => {
        // The new stack takes writes of its own before the commit (smoke tests; on a real store an
        // import moves them after the numbers it claims, past the old stack's cursor).
        const next = Object.keys(world.state.stacks).find((name) => name !== OLD);
        if (what === `fence ${OLD}` && next) world.write(next, 3, 'smoke');
      },
    }).fail('admin.forward', { stack: OLD, message: 'the commit was refused' });
    const before = world.itemIds(OLD);
    const { report } = await runSwitch(testEnv(), { world });
    expect(report.outcome).toBe('failed');
    expect(world.state.dns?.stack).toBe(OLD);
    expect(world.itemIds(OLD)).toEqual(before);
    expect(world.state.imported[OLD] ?? []).toEqual([]);
    expect(world.fenceOf(OLD)).toEqual(['open', 'open']);
  });
});
