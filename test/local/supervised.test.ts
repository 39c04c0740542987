/**
 * The processes of the local environment a fault can hit alone (src/local/services.ts
 * SupervisedProcess): each one killed comes back as it was — the DNS responder on the same port,
 * Temporal on the same port with the runs it had persisted, RabbitMQ on the same port for the
 * stacks' nodes, the worker polling again.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Resolver } from 'node:dns/promises';
import { connect } from 'amqplib';
import { loadEnvironment } from '../../src/config/environment.ts';
import { alive } from '../../src/local/control.ts';
import { readLocalState } from '../../src/local/state.ts';
import { startTestEnvironment, type TestEnvironment } from './local-env.ts';

describe('supervised local processes', () => {
  let t: TestEnvironment;

  beforeAll(async () => {
    t = await startTestEnvironment(20, { persistTemporal: true });
  }, 240_000);

  afterAll(async () => {
    const left = await t?.stop();
    expect(left?.leftoverPids ?? []).toEqual([]);
  });

  it('brings the DNS responder back on the same port after a crash', async () => {
    const env = await loadEnvironment('dev');
    const resolver = new Resolver({ timeout: 500, tries: 1 });
    resolver.setServers([t.localEnvironment.state.dnsServer]);
    const before = await resolver.resolve4(env.recordName);
    const dns = t.localEnvironment.processes.dns;
    const pid = dns.pid()!;
    expect(pid).not.toBe(process.pid);
    await dns.kill();
    expect(alive(pid)).toBe(false);
    await expect(resolver.resolve4(env.recordName)).rejects.toThrow();
    await dns.start();
    expect(await resolver.resolve4(env.recordName)).toEqual(before);
    expect(readLocalState(t.localEnvironment.stateFile).processes.dns).toBe(dns.pid());
  }, 60_000);

  it('brings Temporal back on the same port with the runs it had persisted', async () => {
    const handle = await t.client.workflow.start('backupStack', {
      taskQueue: 'never-polled',
      workflowId: `persisted-${Date.now()}`,
      args: [],
    });
    const temporal = t.localEnvironment.processes.temporal;
    await temporal.kill();
    await temporal.start();
    const described = await handle.describe();
    expect(described.status.name).toBe('RUNNING');
    await handle.terminate('test over');
    expect(readLocalState(t.localEnvironment.stateFile).processes.temporal).toBe(temporal.pid());
  }, 120_000);

  it('brings RabbitMQ back on the same port', async () => {
    const rabbitmq = t.localEnvironment.processes.rabbitmq;
    const pid = rabbitmq.pid()!;
    await rabbitmq.kill();
    expect(alive(pid)).toBe(false);
    await expect(connect(t.localEnvironment.state.bus)).rejects.toThrow();
    await rabbitmq.start();
    const connection = await connect(t.localEnvironment.state.bus);
    await connection.close();
  }, 120_000);

  it('starts the worker again after it was killed', async () => {
    const worker = t.localEnvironment.processes.worker;
    const pid = worker.pid()!;
    await worker.kill();
    expect(alive(pid)).toBe(false);
    await worker.start();
    expect(alive(worker.pid()!)).toBe(true);
    expect(readLocalState(t.localEnvironment.stateFile).processes.worker).toBe(worker.pid());
  }, 120_000);
});
