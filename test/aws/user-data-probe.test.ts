import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { repoRoot } from '../../src/config/environment.ts';
import { startTestNode, type TestNode } from '../server/helpers.ts';

// The API nodes run with SYNC_PROXY_PROTOCOL=1, so the readiness probe in app-stack.yaml's user
// data must speak PROXY v2 itself. Run that exact shell function against a real node in that mode.
const template = readFileSync(resolve(repoRoot, 'infra/app-stack.yaml'), 'utf8');

function probeScript(port: number): string {
  const match = /^( *)ready\(\) \{\n[\s\S]*?^\1\}\n/m.exec(template);
  if (!match) throw new Error('infra/app-stack.yaml has no ready() probe in its user data');
  const body = match[0].replace(/^ {14}/gm, '').replaceAll('127.0.0.1/8080', `127.0.0.1/${port}`);
  return `${body}\nready`;
}

/** Runs bash asynchronously: the node under test answers from this same process. */
function bash(script: string): Promise<number | null> {
  return new Promise((done) => {
    const child = spawn('bash', ['-c', script], { stdio: 'ignore', timeout: 10_000 });
    child.on('exit', (code) => done(code));
  });
}

describe('app-stack.yaml user data', () => {
  let node: TestNode;
  beforeAll(async () => {
    node = await startTestNode({ proxyProtocol: true });
  });
  afterAll(() => node.stop());

  it('sets the proxy-protocol variable to a value the server accepts', () => {
    expect(template).toMatch(/^ *SYNC_PROXY_PROTOCOL=1$/m);
  });

  it('probes /readyz through a PROXY v2 LOCAL header, as the load balancer does', async () => {
    expect(await bash(probeScript(node.port))).toBe(0);
  });

  it('reports not ready once the node drains', async () => {
    const drain = probeScript(node.port).replace(
      'GET /readyz HTTP/1.0',
      `POST /admin/drain HTTP/1.0\\r\\nauthorization: Bearer ${await node.token('ops', true)}\\r\\ncontent-length: 0`,
    );
    expect(await bash(drain)).toBe(0);
    expect(await bash(probeScript(node.port))).toBe(1);
  });
});
