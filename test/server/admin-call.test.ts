import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { repoRoot } from '../../src/config/environment.ts';
import type { NodeStats } from '../../src/navcloud/protocol.ts';
import { SECRET, startTestNode, type TestNode } from './helpers.ts';

/** bin/navcloud-admin.js as an SSM command runs it on an instance: the node's settings in its environment. */
function adminCall(
  port: number,
  proxyProtocol: boolean,
  ...args: string[]
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((res) => {
    execFile(
      process.execPath,
      [resolve(repoRoot, 'bin/navcloud-admin.js'), ...args],
      {
        cwd: repoRoot,
        timeout: 60_000,
        env: {
          ...process.env,
          PORT: String(port),
          HOST: '0.0.0.0',
          SYNC_JWT_SECRET: SECRET,
          SYNC_PROXY_PROTOCOL: proxyProtocol ? '1' : '0',
          SYNC_STORE: 'sqlite:/nonexistent/unused.sqlite',
        },
      },
      (error, stdout, stderr) => res({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
    );
  });
}

// `switchyard fleet` on the aws profile asks each instance to call its own node through SSM.
describe('navcloud-admin: one admin call to the node on this machine', () => {
  let proxied: TestNode;
  let plain: TestNode;
  beforeAll(async () => {
    [proxied, plain] = await Promise.all([
      startTestNode({ proxyProtocol: true, nodeId: 'proxied-node' }),
      startTestNode({ nodeId: 'plain-node' }),
    ]);
  });
  afterAll(async () => {
    await Promise.all([proxied?.stop(), plain?.stop()]);
  });

  it('reaches a node behind PROXY protocol v2 with a LOCAL header and an admin token signed with its secret', async () => {
    const stats = await adminCall(proxied.port, true, 'GET', '/admin/stats');
    expect(stats.stderr).toBe('');
    expect(stats.code).toBe(0);
    expect(JSON.parse(stats.stdout) as NodeStats).toMatchObject({
      node: 'proxied-node',
      draining: false,
      openStreams: 0,
    });
    // Without the header the same node refuses the connection.
    expect((await adminCall(proxied.port, false, 'GET', '/admin/stats')).code).toBe(1);

    expect((await adminCall(proxied.port, true, 'POST', '/admin/drain')).code).toBe(0);
    const readyz = await adminCall(proxied.port, true, 'GET', '/readyz');
    expect(readyz.code).toBe(1);
    expect(readyz.stderr).toContain('GET /readyz answered 503');
  });

  it('calls a node without PROXY protocol directly, and refuses bad usage', async () => {
    expect((await adminCall(plain.port, false, 'GET', '/readyz')).code).toBe(0);
    const missing = await adminCall(plain.port, false, 'GET', '/admin/nothing');
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('answered 404');
    const usage = await adminCall(plain.port, false, 'DELETE', 'admin');
    expect(usage.code).toBe(2);
    expect(usage.stderr).toMatch(/^usage: navcloud-admin GET\|POST \/path/);
  });
});
