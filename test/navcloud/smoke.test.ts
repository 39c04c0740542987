import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAdminClient } from '../../src/navcloud/admin-client.ts';
import { signToken } from '../../src/navcloud/token.ts';
import type { ExportItemLine } from '../../src/navcloud/protocol.ts';
import { runSmokeChecks, type SmokeOptions } from '../../src/navcloud/smoke.ts';
import type { SmokeCheck } from '../../src/switch/contract.ts';
import { freePort } from '../../src/net.ts';
import { encodeCursor } from '../../src/navcloud/cursor.ts';
import { JWT_SECRET, startProxy, startTestStack, type TestStack } from './stack.ts';
import { testLogger } from '../support/logger.ts';
import { createRootLogger } from '../../src/logging.ts';
import { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { fenceAsIs, unfenceAsIs } from '../support/fence.ts';

const HEARTBEAT_MS = 200;
const CHECK_NAMES = [
  'auth-refusal',
  'round-trip',
  'sharing',
  'restored-sample',
  'stream-heartbeats',
  'stream-change-arrival',
];

let stack: TestStack;

function restoredLines(count: number): ExportItemLine[] {
  return Array.from({ length: count }, (_, i) => ({
    kind: 'item' as const,
    id: `restored-${i}`,
    owner: `restored-user-${i % 3}`,
    type: 'place' as const,
    rev: `${1 + (i % 4)}-00000000000${i % 10}`,
    deleted: i === 5,
    ...(i === 5 ? {} : { data: { name: `place ${i}`, tags: ['a', i] } }),
    shares: [],
    cursor: encodeCursor(i + 1),
    updatedAt: new Date(Date.UTC(2026, 0, 1, 0, i)).toISOString(),
  }));
}

function options(overrides: Partial<SmokeOptions> = {}): SmokeOptions {
  return {
    stack: stack.outputs,
    jwtSecret: JWT_SECRET,
    heartbeatMs: HEARTBEAT_MS,
    changeArrivalMs: 2000,
    maxLatencyMs: 2000,
    sampleItems: 8,
    log: testLogger,
    ...overrides,
  };
}

const byName = (checks: SmokeCheck[]) => Object.fromEntries(checks.map((c) => [c.name, c]));
const failed = (checks: SmokeCheck[]) =>
  checks
    .filter((c) => !c.ok)
    .map((c) => c.name)
    .sort();

beforeAll(async () => {
  // Writes on a fenced stack are refused at once (not held), so the checks see the refusal.
  stack = await startTestStack({ nodes: 2, heartbeatMs: HEARTBEAT_MS, holdMs: 0 });
  const admin = createAdminClient({ adminUrl: stack.outputs.adminUrl, jwtSecret: JWT_SECRET });
  await admin.importLines(restoredLines(12));
});
afterAll(async () => {
  await stack?.close();
});

describe('runSmokeChecks', () => {
  it('passes every check on a healthy two-node stack and leaves no smoke items behind', async () => {
    const checks = await runSmokeChecks(options());
    expect(checks.map((c) => c.name)).toEqual([...stack.outputs.nodes.map((n) => `health ${n}`), ...CHECK_NAMES]);
    expect(checks.filter((c) => !c.ok)).toEqual([]);
    for (const check of checks) expect(check.durationMs).toBeGreaterThanOrEqual(0);

    const admin = createAdminClient({ adminUrl: stack.outputs.adminUrl, jwtSecret: JWT_SECRET });
    const live = [];
    for await (const line of admin.exportSince(undefined)) {
      if (line.kind === 'item' && line.owner.startsWith('smoke-') && !line.deleted) live.push(line.id);
    }
    expect(live).toEqual([]);
  });

  it('runs the checks side by side, and the sample reads too, reporting them in their fixed order', async () => {
    const arrived: string[] = [];
    // Each sample read is held until five are waiting (or a second passed): one after the other, never more than one waits.
    let sampleReadsWaiting = 0;
    let mostSampleReadsWaiting = 0;
    const endpoint = await startProxy(stack.outputs.endpoint, async (_headers, path) => {
      arrived.push(path);
      if (!path.includes('/v1/items/restored-')) return;
      mostSampleReadsWaiting = Math.max(mostSampleReadsWaiting, ++sampleReadsWaiting);
      for (let waited = 0; sampleReadsWaiting < 5 && mostSampleReadsWaiting < 5 && waited < 1000; waited += 10)
        await sleep(10);
      sampleReadsWaiting -= 1;
    });
    try {
      const checks = await runSmokeChecks(options({ stack: { ...stack.outputs, endpoint: endpoint.url } }));
      expect(checks.map((c) => c.name)).toEqual([...stack.outputs.nodes.map((n) => `health ${n}`), ...CHECK_NAMES]);
      expect(failed(checks)).toEqual([]);
    } finally {
      await endpoint.close();
    }
    // One after the other, every request of the round trip would come before the first of sharing.
    const lastRoundTrip = arrived.map((path) => path.includes('-round-trip')).lastIndexOf(true);
    const firstSharing = arrived.findIndex((path) => path.includes('-shared'));
    expect(firstSharing).toBeGreaterThan(-1);
    expect(firstSharing).toBeLessThan(lastRoundTrip);
    expect(mostSampleReadsWaiting).toBe(5);
  });

  it('fails the health check of a node that is down, and the stream check writing through it', async () => {
    const deadNode = `http://127.0.0.1:${await freePort()}`;
    const checks = await runSmokeChecks(
      options({ stack: { ...stack.outputs, nodes: [stack.outputs.nodes[0]!, deadNode] } }),
    );
    expect(failed(checks)).toEqual([`health ${deadNode}`, 'stream-change-arrival'].sort());
    expect(byName(checks)[`health ${deadNode}`]!.detail).toMatch(/ConnectionError/);
  });

  it('fails the heartbeat check when the node beats at another interval, and only that one', async () => {
    const slow = await startTestStack({ nodes: 1, heartbeatMs: 60_000 });
    const fast = await startTestStack({ nodes: 1, heartbeatMs: 20 });
    try {
      const slowChecks = await runSmokeChecks(options({ stack: slow.outputs, sampleItems: 0 }));
      expect(failed(slowChecks)).toEqual(['stream-heartbeats']);
      expect(byName(slowChecks)['stream-heartbeats']!.detail).toMatch(/no heartbeat/);
      const fastChecks = await runSmokeChecks(options({ stack: fast.outputs, sampleItems: 0 }));
      expect(failed(fastChecks)).toEqual(['stream-heartbeats']);
      expect(byName(fastChecks)['stream-heartbeats']!.detail).toMatch(/apart, expected about 200 ms/);
    } finally {
      await Promise.all([slow.close(), fast.close()]);
    }
  });

  it('runs the checks once more when they failed while the checker itself stalled, as a frozen worker does', async () => {
    const warnings: string[] = [];
    const log = createRootLogger('smoke', {
      env: {},
      level: 'warn',
      stream: new Writable({
        write(chunk: Buffer, _encoding, done) {
          warnings.push(String(JSON.parse(chunk.toString('utf8')).msg));
          done();
        },
      }),
    });
    const node = stack.outputs.nodes[0]!;
    let streams = 0;
    // The first stream opened through it sees the whole process stall past the heartbeat's bound.
    const proxy = await startProxy(node, (_headers, path) => {
      if (path.startsWith('/v1/stream') && ++streams === 1) setTimeout(() => stall(HEARTBEAT_MS * 8), 50);
    });
    try {
      const stalled = { ...stack.outputs, nodes: [proxy.url, ...stack.outputs.nodes.slice(1)] };
      expect(failed(await runSmokeChecks(options({ stack: stalled, log })))).toEqual([]);
      expect(streams).toBe(2);
      expect(warnings).toEqual(['smoke check failed', expect.stringMatching(/while the checker itself stalled/)]);
      // A failure with no stall of the checker stands: the slow node beats at another interval.
      warnings.length = 0;
      const slow = await startTestStack({ nodes: 1, heartbeatMs: 60_000 });
      try {
        expect(failed(await runSmokeChecks(options({ stack: slow.outputs, sampleItems: 0, log })))).toEqual([
          'stream-heartbeats',
        ]);
      } finally {
        await slow.close();
      }
      expect(warnings.filter((message) => /stalled/.test(message))).toEqual([]);
    } finally {
      await proxy.close();
    }
  });

  it('fails the write checks on a fenced stack', async () => {
    const admin = createAdminClient({ adminUrl: stack.outputs.adminUrl, jwtSecret: JWT_SECRET });
    await fenceAsIs(admin, 60);
    try {
      const checks = await runSmokeChecks(options());
      expect(failed(checks)).toEqual(['round-trip', 'sharing', 'stream-change-arrival'].sort());
      expect(byName(checks)['round-trip']!.detail).toMatch(/answered 503 fenced/);
    } finally {
      await unfenceAsIs(admin);
    }
  });

  it('fails the readiness of a draining node', async () => {
    const draining = await startTestStack({ nodes: 2, heartbeatMs: HEARTBEAT_MS });
    try {
      await createAdminClient({ adminUrl: draining.outputs.adminUrl, jwtSecret: JWT_SECRET }).drain(
        draining.outputs.nodes[1]!,
      );
      const checks = await runSmokeChecks(options({ stack: draining.outputs, sampleItems: 0 }));
      expect(failed(checks)).toEqual([`health ${draining.outputs.nodes[1]}`]);
      expect(byName(checks)[`health ${draining.outputs.nodes[1]}`]!.detail).toMatch(/readyz answered 503 draining/);
    } finally {
      await draining.close();
    }
  });

  it('fails auth refusal behind a gateway that lets anonymous requests through', async () => {
    const gatewayToken = await signToken(JWT_SECRET, 'gateway');
    const gateway = await startProxy(stack.outputs.endpoint, (headers) => {
      headers.authorization ??= `Bearer ${gatewayToken}`;
    });
    try {
      const checks = await runSmokeChecks(options({ stack: { ...stack.outputs, endpoint: gateway.url } }));
      expect(failed(checks)).toEqual(['auth-refusal']);
      expect(byName(checks)['auth-refusal']!.detail).toMatch(/with no token answered 404.*expected 401/);
    } finally {
      await gateway.close();
    }
  });

  it('fails the restored sample when the endpoint serves another store than the admin URL', async () => {
    const empty = await startTestStack({ nodes: 1, heartbeatMs: HEARTBEAT_MS });
    try {
      const checks = await runSmokeChecks(options({ stack: { ...stack.outputs, endpoint: empty.outputs.endpoint } }));
      expect(failed(checks)).toEqual(['restored-sample']);
      expect(byName(checks)['restored-sample']!.detail).toMatch(
        /^8 of 8 sampled items differ: restored-0 \(owner restored-user-0\): 404/,
      );
    } finally {
      await empty.close();
    }
  });

  it('fails the restored sample when items differ from the export in revision or data', async () => {
    const stale = await startTestStack({ nodes: 1, heartbeatMs: HEARTBEAT_MS });
    try {
      const lines = restoredLines(12);
      lines[0] = { ...lines[0]!, rev: '0-older' };
      lines[1] = { ...lines[1]!, data: { name: 'something else' } };
      await createAdminClient({ adminUrl: stale.outputs.adminUrl, jwtSecret: JWT_SECRET }).importLines(lines);
      const checks = await runSmokeChecks(options({ stack: { ...stack.outputs, endpoint: stale.outputs.endpoint } }));
      expect(failed(checks)).toEqual(['restored-sample']);
      expect(byName(checks)['restored-sample']!.detail).toBe(
        '2 of 8 sampled items differ: restored-0: revision 0-older, export says 1-000000000000; restored-1: data differs from the export',
      );
    } finally {
      await stale.close();
    }
  });

  it('throws only when aborted', async () => {
    const controller = new AbortController();
    const reason = new Error('switch cancelled');
    setTimeout(() => controller.abort(reason), 50);
    await expect(runSmokeChecks(options({ signal: controller.signal }))).rejects.toBe(reason);
  });
});

/** Blocks the event loop, as a SIGSTOP of the process does from its own point of view. */
function stall(ms: number): void {
  const until = Date.now() + ms;
  while (Date.now() < until);
}
