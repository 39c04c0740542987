import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { testLogger } from '../support/logger.ts';
import { LocalStackProvisioner } from '../../src/cloud/local/stack-provisioner.ts';
import { isRunning } from '../../src/cloud/local/processes.ts';
import { CloudError, StackFailedError } from '../../src/cloud/errors.ts';
import type { CreateStackRequest, StackProgress } from '../../src/cloud/ports.ts';
import { signToken } from '../../src/navcloud/token.ts';
import { freePort } from '../../src/net.ts';
import type { LocalStore } from '../../src/cloud/local/stack-spec.ts';
import { createAdminClient } from '../../src/navcloud/admin-client.ts';
import type { ExportItemLine } from '../../src/navcloud/protocol.ts';
import { spawnRiakEmulator } from '../support/riak-emulator.ts';
import { tempDir } from '../support/temp-dir.ts';

const SECRET = 'provisioner-test-secret-0123456789';

/** Pids of a stack's nodes, as its pid files say, with the marker that proves a pid is still ours. */
function nodePids(stacksDir: string, name: string): Array<{ pid: number; marker: string }> {
  const dir = join(stacksDir, name);
  return readdirSync(dir)
    .filter((f) => f.endsWith('.pid'))
    .map((f) => ({
      pid: Number(readFileSync(join(dir, f), 'utf8')),
      marker: `SYNC_NODE_ID=${name}-${f.replace('.pid', '')}`,
    }));
}

describe('local stack provisioner (real navcloud-sync processes)', () => {
  let stacksDir: string;
  let port: number;
  let request: CreateStackRequest;
  const provisioner = () =>
    new LocalStackProvisioner({ stacksDir, logger: testLogger, jwtSecret: SECRET, stopGraceMs: 5_000 });

  beforeAll(async () => {
    stacksDir = tempDir('switchyard-stacks-').path;
    port = await freePort();
    request = {
      name: `navcloud-t-blue-${randomBytes(3).toString('hex')}`,
      env: 't',
      colour: 'blue',
      workflowId: 'switch-t/run-1',
      template: 'local-stack',
      parameters: { nodes: '2', port: String(port), heartbeatMs: '500', version: 'ignored' },
    };
  });

  afterAll(async () => {
    const p = provisioner();
    for (const name of existsSync(stacksDir) ? readdirSync(stacksDir).filter((n) => !n.startsWith('.')) : [])
      await p.delete(name);
  });

  it('creates a 2-node stack on its own loopback addresses, sharing one store', async () => {
    const p = provisioner();
    await p.create(request);
    const pidsAfterCreate = nodePids(stacksDir, request.name).map((n) => n.pid);
    // Same name and workflow: a no-op that starts nothing new.
    await p.create(request);
    expect(nodePids(stacksDir, request.name).map((n) => n.pid)).toEqual(pidsAfterCreate);

    const progress: StackProgress[] = [];
    const ready = await p.waitUntilReady(request.name, (e) => progress.push(e));
    expect(ready.status).toBe('ready');
    expect(ready.rawStatus).toBe('CREATE_COMPLETE');
    expect(progress.length).toBeGreaterThan(0);
    expect(progress.every((e) => e.total === 2)).toBe(true);

    const outputs = ready.outputs!;
    expect(outputs.nodes).toHaveLength(2);
    expect(outputs.dnsTarget.kind).toBe('a');
    const addresses = outputs.dnsTarget.kind === 'a' ? outputs.dnsTarget.addresses : [];
    expect(new Set(addresses).size).toBe(2);
    for (const address of addresses) expect(address).toMatch(/^127\.(\d+)\.(\d+)\.\d+$/);
    expect(addresses[0]).not.toMatch(/^127\.0\./);
    expect(outputs.nodes).toEqual(addresses.map((a) => `http://${a}:${port}`));
    expect(outputs.endpoint).toBe(outputs.nodes[0]);
    expect(outputs.adminUrl).toBe(outputs.nodes[0]);

    // A write through one node is read through the other: one SQLite file behind both.
    const auth = { authorization: `Bearer ${await signToken(SECRET, 'alice')}`, 'content-type': 'application/json' };
    const put = await fetch(`${outputs.nodes[0]}/v1/items/trip-1`, {
      method: 'PUT',
      headers: auth,
      body: JSON.stringify({ type: 'trip', data: { to: 'Lyon' } }),
    });
    expect(put.status).toBe(201);
    const got = await fetch(`${outputs.nodes[1]}/v1/items/trip-1`, { headers: auth });
    expect(got.status).toBe(200);
    expect(await got.json()).toMatchObject({ data: { to: 'Lyon' } });

    const stackFile = JSON.parse(readFileSync(join(stacksDir, request.name, 'stack.json'), 'utf8'));
    expect(stackFile).toMatchObject({
      name: request.name,
      env: 't',
      colour: 'blue',
      workflowId: 'switch-t/run-1',
      status: 'ready',
      outputs,
    });
    expect(stackFile.tags).toEqual({ env: 't', colour: 'blue', workflowId: 'switch-t/run-1' });
  });

  it('refuses the same stack name for another workflow', async () => {
    await expect(provisioner().create({ ...request, workflowId: 'switch-t/run-2' })).rejects.toMatchObject({
      code: 'AlreadyExists',
      retryable: false,
    });
  });

  it('is found again, running, by a new provisioner object (a restarted worker)', async () => {
    const p = provisioner();
    const described = await p.describe(request.name);
    expect(described).toMatchObject({ name: request.name, status: 'ready', colour: 'blue', env: 't' });
    expect((await p.list('t')).map((s) => s.name)).toEqual([request.name]);
    expect(await p.list('other')).toEqual([]);
    expect(await p.describe('navcloud-t-green-none')).toBeUndefined();
    for (const url of described!.outputs!.nodes) expect((await fetch(`${url}/readyz`)).status).toBe(200);
    expect(nodePids(stacksDir, request.name).every((n) => isRunning(n.pid, n.marker))).toBe(true);
  });

  it('reports a node that died after creation in describe, without failing the stack', async () => {
    const [, second] = nodePids(stacksDir, request.name);
    process.kill(second!.pid, 'SIGKILL');
    for (let i = 0; i < 100 && isRunning(second!.pid, second!.marker); i++) await new Promise((r) => setTimeout(r, 50));
    const described = await provisioner().describe(request.name);
    expect(described!.status).toBe('ready');
    expect(described!.rawStatus).toContain(`${request.name}-node-2`);
  });

  it('deletes the stack: its streams are told to reconnect, then no process, no folder; deleting again is a no-op', async () => {
    const pids = nodePids(stacksDir, request.name);
    const p = provisioner();
    const node = (await p.describe(request.name))!.outputs!.nodes[0]!;
    const stream = await fetch(`${node}/v1/stream`, {
      headers: { authorization: `Bearer ${await signToken(SECRET, 'alice')}` },
    });
    expect(stream.status).toBe(200);
    const lines = stream.text();
    await p.delete(request.name);
    const last = (await lines).trim().split('\n').at(-1)!;
    expect(JSON.parse(last)).toMatchObject({ type: 'reconnect' });
    await p.waitUntilDeleted(request.name);
    expect(pids.some((n) => isRunning(n.pid, n.marker))).toBe(false);
    expect(existsSync(join(stacksDir, request.name))).toBe(false);
    expect(await p.describe(request.name)).toBeUndefined();
    await p.delete(request.name);
    expect(readdirSync(join(stacksDir, '.blocks'))).toEqual([]);
  });

  it('fails a stack whose node exits while it is being created, naming the node and its last log line', async () => {
    const bad = new LocalStackProvisioner({ stacksDir, logger: testLogger, jwtSecret: 'short', stopGraceMs: 2_000 });
    const name = `navcloud-t-green-${randomBytes(3).toString('hex')}`;
    await bad.create({ ...request, name, colour: 'green' });
    const error = await bad.waitUntilReady(name).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StackFailedError);
    expect((error as StackFailedError).retryable).toBe(false);
    // Both nodes exit; the stack fails on the first one seen dead.
    const failed = (error as StackFailedError).failures.map((f) => f.resource);
    expect(failed.length).toBeGreaterThan(0);
    for (const resource of failed) expect(resource).toMatch(new RegExp(`^${name}-node-[12]$`));
    expect((error as Error).message).toContain('SYNC_JWT_SECRET');
    expect((await bad.describe(name))!.status).toBe('failed');
    await bad.delete(name);
    expect(existsSync(join(stacksDir, name))).toBe(false);
  });

  it('rejects a bad template parameter, naming it', async () => {
    const error = await provisioner()
      .create({ ...request, name: 'navcloud-t-blue-badparam', parameters: { nodes: 'many', port: String(port) } })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CloudError);
    expect((error as CloudError).retryable).toBe(false);
    expect((error as Error).message).toMatch(/'nodes'/);
    expect(existsSync(join(stacksDir, 'navcloud-t-blue-badparam'))).toBe(false);
  });

  it('rejects a store that is neither sqlite nor a Riak URL without a bucket', async () => {
    for (const store of ['postgres://db', 'riak:http://127.0.0.1:8098?bucket=shared', 'riak:']) {
      const error = await provisioner()
        .create({ ...request, name: 'navcloud-t-blue-badstore', parameters: { ...request.parameters, store } })
        .catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'InvalidTemplate', retryable: false });
      expect((error as Error).message).toContain(`'store': store must be sqlite or riak:http://HOST:8098`);
    }
  });
});

describe('local stacks on Riak (the emulator as a process)', () => {
  let stacksDir: string;
  let riak: Awaited<ReturnType<typeof spawnRiakEmulator>>;
  const names: string[] = [];

  beforeAll(async () => {
    stacksDir = tempDir('switchyard-riak-stacks-').path;
    riak = await spawnRiakEmulator();
  });

  afterAll(async () => {
    const p = new LocalStackProvisioner({ stacksDir, logger: testLogger, jwtSecret: SECRET, stopGraceMs: 5_000 });
    for (const name of names) await p.delete(name);
    await riak.stop();
  });

  async function riakStack(store: {
    parameter?: string;
    environment?: LocalStore;
  }): Promise<{ name: string; nodes: string[]; adminUrl: string }> {
    const p = new LocalStackProvisioner({
      stacksDir,
      logger: testLogger,
      jwtSecret: SECRET,
      stopGraceMs: 5_000,
      store: store.environment,
    });
    const name = `navcloud-r-${randomBytes(3).toString('hex')}`;
    names.push(name);
    const parameters: Record<string, string> = { nodes: '2', port: String(await freePort()), heartbeatMs: '500' };
    if (store.parameter) parameters.store = store.parameter;
    await p.create({
      name,
      env: 'r',
      colour: 'blue',
      workflowId: `switch-r/${name}`,
      template: 'local-stack',
      parameters,
    });
    const { outputs } = await p.waitUntilReady(name);
    return { name, nodes: outputs!.nodes, adminUrl: outputs!.adminUrl };
  }

  it('serves writes and exports from a bucket of its own, named by the store parameter or the environment', async () => {
    const auth = { authorization: `Bearer ${await signToken(SECRET, 'alice')}`, 'content-type': 'application/json' };
    const first = await riakStack({ parameter: `riak:${riak.url}?export_grace_ms=100` });
    const second = await riakStack({ environment: `riak:${riak.url}?export_grace_ms=100` });
    for (const stack of [first, second]) {
      expect(readFileSync(join(stacksDir, stack.name, 'node.env'), 'utf8')).toContain(
        `SYNC_STORE=riak:${riak.url}?export_grace_ms=100&bucket=${stack.name}\n`,
      );
      const put = await fetch(`${stack.nodes[0]}/v1/items/trip-${stack.name}`, {
        method: 'PUT',
        headers: auth,
        body: JSON.stringify({ type: 'trip', data: { on: stack.name } }),
      });
      expect(put.status).toBe(201);
      const got = await fetch(`${stack.nodes[1]}/v1/items/trip-${stack.name}`, { headers: auth });
      expect(await got.json()).toMatchObject({ data: { on: stack.name } });
    }
    // Each stack sees only its own bucket.
    for (const stack of [first, second]) {
      const lines = [];
      for await (const line of createAdminClient({ adminUrl: stack.adminUrl, jwtSecret: SECRET }).exportSince(
        undefined,
      ))
        lines.push(line);
      expect(lines.filter((line) => line.kind === 'item').map((line) => (line as ExportItemLine).id)).toEqual([
        `trip-${stack.name}`,
      ]);
      expect(lines.at(-1)).toMatchObject({ kind: 'end', items: 1 });
    }
  });
});
