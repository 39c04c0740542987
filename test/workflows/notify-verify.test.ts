/**
 * Notifications and data verification wired into the switch, on the time-skipping server with the
 * fake world: the `notify:` webhook (a real HTTP receiver on loopback) hears each event, a failed
 * notification is a warning and never a failed switch, and while verifying every item of the old
 * stack is compared with the new one: a mismatch rolls back and names the item.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { rehearsal } from '../../workflows/index.ts';
import { approveUpdate } from '../../src/switch/contract.ts';
import { FakeWorld, seedWorld } from '../support/fake-ports.ts';
import { startReceiver } from '../notify/receiver.ts';
import { OLD, runSwitch, seededWorld } from './harness.ts';
import { untilPhase } from '../support/phase.ts';
import { useTimeSkippingEnvironment } from './time-skipping-suite.ts';

const testEnv = useTimeSkippingEnvironment();
let receiver: Awaited<ReturnType<typeof startReceiver>> | undefined;
afterEach(async () => {
  await receiver?.close();
  receiver = undefined;
});

interface Heard {
  event: string;
  summary: string;
  text: string;
  approveCommand?: string;
}

const heard = (): Heard[] => (receiver?.received ?? []).map((r) => JSON.parse(r.body) as Heard);

describe('notifications', () => {
  it('tells the webhook started, awaiting-approval with the exact approve command, and switched', async () => {
    receiver = await startReceiver();
    const env = { approval: 'manual' as const, notify: [{ webhook: `${receiver.url}/hook` }] };
    const { report } = await runSwitch(testEnv(), {
      env,
      during: async (handle) => {
        await untilPhase(handle, 'awaiting-approval');
        await handle.executeUpdate(approveUpdate, { args: [{ by: 'ann', comment: 'go' }] });
      },
    });
    expect(report.outcome).toBe('switched');
    expect(report.warnings).toBeUndefined();
    const events = heard();
    expect(events.map((e) => e.event)).toEqual(['started', 'awaiting-approval', 'switched']);
    expect(events[0]!.summary).toContain(`from ${OLD}`);
    expect(events[1]!.approveCommand).toBe('switchyard approve --env test --comment "<why>"');
    expect(events[1]!.summary).toContain('approve with `switchyard approve --env test --comment "<why>"`');
    expect(events[2]!.summary).toBe(`clients are on ${report.to?.stack} (was ${OLD})`);
  });

  it('records a notification that fails as a warning, and the switch still switches', async () => {
    // The first POST (started) is refused for good; the rest are taken.
    receiver = await startReceiver([404]);
    const { report } = await runSwitch(testEnv(), { env: { notify: [{ webhook: `${receiver.url}/hook` }] } });
    expect(report.outcome).toBe('switched');
    expect(report.warnings).toEqual([
      expect.stringMatching(/^notification 'started' to webhook 127\.0\.0\.1:\d+ failed: answered HTTP 404$/),
    ]);
    expect(heard().map((e) => e.event)).toEqual(['started', 'switched']);
  });

  it('tells only the events a target wants, and a rehearsal as rehearsed', async () => {
    receiver = await startReceiver();
    const { report } = await runSwitch(testEnv(), {
      env: { notify: [{ webhook: `${receiver.url}/hook`, events: ['rehearsed', 'failed'] }] },
      workflow: rehearsal,
    });
    expect(report.outcome).toBe('rehearsed');
    expect(heard().map((e) => e.event)).toEqual(['rehearsed']);
    expect(heard()[0]!.summary).toMatch(
      new RegExp(
        `^a switch to ${report.to?.stack} would have gone ahead; last delta 0 items, predicted write pause \\d+ ms$`,
      ),
    );
  });

  it('tells of a rehearsal that failed as failed, saying a switch would not have gone ahead', async () => {
    receiver = await startReceiver();
    const world = seededWorld().fail('smoke', { message: 'no heartbeat' });
    const { report } = await runSwitch(testEnv(), {
      world,
      env: { notify: [{ webhook: `${receiver.url}/hook` }] },
      workflow: rehearsal,
    });
    expect(report.outcome).toBe('failed');
    expect(heard().map((e) => e.event)).toEqual(['failed']);
    expect(heard()[0]!.summary).toBe(
      'rehearsal failed: a switch would not have gone ahead: smoke checks failed: stream (no heartbeat)',
    );
  });
});

describe('data verification after the flip', () => {
  it('compares every item of the old stack with the new one and reports the write pause', async () => {
    const world = seededWorld();
    const { report } = await runSwitch(testEnv(), { world });
    expect(report.outcome).toBe('switched');
    expect(report.verification).toEqual({
      itemsCompared: world.itemIds(OLD).length,
      mismatches: 0,
      firstMismatches: [],
    });
    expect(report.writePause?.fenceToForwardMs).toBeGreaterThanOrEqual(0);
    // What the old stack's nodes held and forwarded, summed over them at the drain's last look.
    const nodes = report.from ? (world.stack(report.from.stack).description.outputs?.nodes.length ?? 0) : 0;
    expect(nodes).toBeGreaterThan(0);
    expect(report.writePause).toMatchObject({
      requestsHeld: 2 * nodes,
      holdsTimedOut: nodes,
      requestsForwarded: 5 * nodes,
    });
  });

  it('rolls back when an item of the old stack is missing on the new one, naming it', async () => {
    receiver = await startReceiver();
    let lost: string | undefined;
    const world: FakeWorld = new FakeWorld({
      onStep: (what) => {
        // A copy that lost an item: once the old stack forwards, the new one lacks one of its items.
        const forwarded = /^forward (\S+) to (\S+)$/.exec(what);
        if (!lost && forwarded?.[1] === OLD) {
          lost = world.itemIds(OLD)[0]!;
          delete world.stack(forwarded[2]!).items[lost];
        }
      },
    });
    seedWorld(world, 'test');
    const { report } = await runSwitch(testEnv(), { world, env: { notify: [{ webhook: `${receiver.url}/hook` }] } });
    expect(lost).toBeDefined();
    expect(report.outcome).toBe('rolled-back');
    expect(report.reason).toContain(
      `1 of ${world.itemIds(OLD).length} items of ${OLD} differ on ${report.to?.stack}, first: ${lost} (missing)`,
    );
    expect(report.verification).toMatchObject({ mismatches: 1, firstMismatches: [{ id: lost, problem: 'missing' }] });
    expect(world.state.dns?.stack).toBe(OLD);
    expect(heard().map((e) => e.event)).toEqual(['started', 'rolled-back']);
  });
});
