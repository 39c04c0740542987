/**
 * Which stacks go: src/switch/gc.ts (what the switch's tear-down and start use) and
 * `switchyard gc`'s collectGarbage over the fake world's ports.
 */
import { describe, expect, it } from 'vitest';
import type { StackDescription } from '../../src/cloud/ports.ts';
import { stacksToDelete } from '../../src/switch/gc.ts';
import { collectGarbage } from '../../src/switch/collect-garbage.ts';
import { createRootLogger } from '../../src/logging.ts';
import { FakeWorld, seedWorld } from '../support/fake-ports.ts';
import { forwardAsIs } from '../support/fence.ts';

function stack(name: string, createdDay: number, status: StackDescription['status'] = 'ready'): StackDescription {
  return {
    name, env: 'test', colour: 'blue', workflowId: 'switch-test', status, rawStatus: status === 'ready' ? 'CREATE_COMPLETE' : 'ROLLBACK_COMPLETE',
    createdAt: new Date(Date.UTC(2026, 0, createdDay)).toISOString(),
    ...(status === 'ready' ? { outputs: { endpoint: `http://${name}`, adminUrl: `http://${name}`, nodes: [], dnsTarget: { kind: 'a', addresses: [] } } } : {}),
  };
}

const names = (stacks: StackDescription[]) => stacks.map((s) => s.name).sort();

describe('stacksToDelete', () => {
  const live = stack('live', 10);
  const previous = stack('previous', 5);
  const keptFailed = stack('kept-failed', 8);
  const failed = stack('failed', 9, 'failed');
  const owned = stack('owned', 11, 'creating');

  it('keeps the previous live stack first, whatever is newer', () => {
    expect(names(stacksToDelete([live, previous, keptFailed, failed, owned], { live: 'live', owned: ['owned'], previous: 'previous', keepStacks: 1 })))
      .toEqual(['failed', 'kept-failed']);
  });

  it('fills further kept places with ready stacks, newest first; failed ones never take a place', () => {
    expect(names(stacksToDelete([live, previous, keptFailed, failed], { live: 'live', owned: [], previous: 'previous', keepStacks: 5 })))
      .toEqual(['failed']);
    expect(names(stacksToDelete([live, previous, keptFailed], { live: 'live', owned: [], keepStacks: 1 }))).toEqual(['previous']);
  });

  it('never deletes the live stack or an owned one, even with nothing kept', () => {
    expect(names(stacksToDelete([live, previous, owned], { live: 'live', owned: ['owned'], keepStacks: 0 }))).toEqual(['previous']);
  });
});

describe('collectGarbage (switchyard gc)', () => {
  const logger = createRootLogger('gc-test', { level: 'silent' });

  it('deletes stacks of runs that are over, keeps the live one, the owned one and the one the live stack forwards to', async () => {
    const world = new FakeWorld();
    const live = seedWorld(world, 'test');
    world.addStack('navcloud-test-green-prev0001', 'green', { createdAt: new Date(Date.UTC(2025, 5, 1)).toISOString() });
    world.addStack('navcloud-test-green-newer001', 'green', { createdAt: new Date(Date.UTC(2026, 5, 1)).toISOString() });
    world.addStack('navcloud-test-green-dead0001', 'green');
    const dead = world.stack('navcloud-test-green-dead0001');
    dead.description = { ...dead.description, status: 'failed', rawStatus: 'ROLLBACK_COMPLETE' };
    world.addStack('navcloud-test-green-mine0001', 'green');
    // The live stack forwards to the older one: it is where a rollback returns, though not the newest.
    const admin = world.admin(`fake://${live}`);
    await forwardAsIs(admin, 'http://fake/navcloud-test-green-prev0001');

    const result = await collectGarbage({
      env: 'test', recordName: world.recordName('test'), keepStacks: 1, ports: world.ports(),
      admin: (url) => world.admin(url), owned: async () => ['navcloud-test-green-mine0001'], logger,
    });
    expect(result.live).toBe(live);
    expect(result.deleted.sort()).toEqual(['navcloud-test-green-dead0001', 'navcloud-test-green-newer001']);
    expect(result.failed).toEqual([]);
    expect(world.stack(live).description.status).toBe('ready');
    expect(world.stack('navcloud-test-green-prev0001').description.status).toBe('ready');
    expect(world.stack('navcloud-test-green-mine0001').description.status).toBe('ready');
  });

  it('with --dry-run deletes nothing', async () => {
    const world = new FakeWorld();
    seedWorld(world, 'test');
    world.addStack('navcloud-test-green-old00001', 'green');
    const result = await collectGarbage({
      env: 'test', recordName: world.recordName('test'), keepStacks: 0, ports: world.ports(),
      admin: (url) => world.admin(url), owned: async () => [], logger, dryRun: true,
    });
    expect(result.deleted).toEqual(['navcloud-test-green-old00001']);
    expect(world.stack('navcloud-test-green-old00001').description.status).toBe('ready');
  });
});
