/**
 * `switchyard gc`'s collectGarbage over the fake world's ports: what it looks at and deletes
 * (which stacks may go is test/switch/roles.test.ts).
 */
import { describe, expect, it } from 'vitest';
import { collectGarbage } from '../../src/switch/collect-garbage.ts';
import { createRootLogger } from '../../src/logging.ts';
import { FakeWorld, seedWorld } from '../support/fake-ports.ts';
import { forwardAsIs } from '../support/fence.ts';

describe('collectGarbage (switchyard gc)', () => {
  const logger = createRootLogger('gc-test', { level: 'silent' });

  it('deletes stacks of runs that are over; keeps the live one, the owned one and the one the live stack forwards to, even with nothing kept', async () => {
    const world = new FakeWorld();
    const live = seedWorld(world, 'test');
    world.addStack('navcloud-test-green-prev0001', 'green', {
      createdAt: new Date(Date.UTC(2025, 5, 1)).toISOString(),
    });
    world.addStack('navcloud-test-green-newer001', 'green', {
      createdAt: new Date(Date.UTC(2026, 5, 1)).toISOString(),
    });
    world.addStack('navcloud-test-green-dead0001', 'green');
    const dead = world.stack('navcloud-test-green-dead0001');
    dead.description = { ...dead.description, status: 'failed', rawStatus: 'ROLLBACK_COMPLETE' };
    world.addStack('navcloud-test-green-mine0001', 'green');
    // The live stack forwards to the older one: that one takes the writes, and a rollback returns there, though it is not the newest.
    const admin = world.admin(`fake://${live}`);
    await forwardAsIs(admin, 'http://fake/navcloud-test-green-prev0001');

    const result = await collectGarbage({
      env: 'test',
      recordName: world.recordName('test'),
      keepStacks: 0,
      ports: world.ports(),
      admin: (url) => world.admin(url),
      owned: async () => ['navcloud-test-green-mine0001'],
      logger,
    });
    expect(result.live).toBe(live);
    expect(result.deleted.sort()).toEqual(['navcloud-test-green-dead0001', 'navcloud-test-green-newer001']);
    expect(result.failed).toEqual([]);
    expect(world.stack(live).description.status).toBe('ready');
    expect(world.stack('navcloud-test-green-prev0001').description.status).toBe('ready');
    expect(world.stack('navcloud-test-green-mine0001').description.status).toBe('ready');
  });

  it('keeps the newest stack a switch drained before a newer one it did not drain', async () => {
    const world = new FakeWorld();
    seedWorld(world, 'test');
    const day = (d: number) => new Date(Date.UTC(2026, 0, d)).toISOString();
    world.addStack('navcloud-test-green-drained1', 'green', { createdAt: day(2) });
    world.addStack('navcloud-test-green-kept0001', 'green', { createdAt: day(3) });
    world.stack('navcloud-test-green-drained1').draining = true;
    const result = await collectGarbage({
      env: 'test',
      recordName: world.recordName('test'),
      keepStacks: 1,
      ports: world.ports(),
      admin: (url) => world.admin(url),
      owned: async () => [],
      logger,
      dryRun: true,
    });
    expect(result.deleted).toEqual(['navcloud-test-green-kept0001']);
  });

  it('with --dry-run deletes nothing', async () => {
    const world = new FakeWorld();
    seedWorld(world, 'test');
    world.addStack('navcloud-test-green-old00001', 'green');
    const result = await collectGarbage({
      env: 'test',
      recordName: world.recordName('test'),
      keepStacks: 0,
      ports: world.ports(),
      admin: (url) => world.admin(url),
      owned: async () => [],
      logger,
      dryRun: true,
    });
    expect(result.deleted).toEqual(['navcloud-test-green-old00001']);
    expect(world.stack('navcloud-test-green-old00001').description.status).toBe('ready');
  });
});
