/**
 * waitReady (src/local/services.ts): how the local environment waits for each process it starts.
 * A probe that never answers (a listener that accepts and says nothing while the service boots)
 * must not hold the start for ever: CI once waited out a 240 s hook on one.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { completesHandshake } from '../../src/local/broker.ts';
import { spawnService, waitReady, type Service } from '../../src/local/services.ts';
import { tempDir } from '../support/temp-dir.ts';

describe('waitReady', () => {
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0)) await cleanup();
  });

  function sleeper(): Service {
    const service = spawnService({
      name: 'sleeper',
      command: 'sleep',
      args: ['30'],
      logFile: join(tempDir('switchyard-services-').path, 'sleeper.log'),
    });
    cleanups.push(() => service.stop(1_000));
    return service;
  }

  it('gives up at its deadline, naming the service, when a probe never answers', async () => {
    const service = sleeper();
    const signals: AbortSignal[] = [];
    const started = Date.now();
    await expect(
      waitReady(service, 'the silent service', 300, (signal) => {
        signals.push(signal);
        return new Promise<boolean>(() => undefined);
      }),
    ).rejects.toThrow(/the silent service was not ready within 300 ms; see .*sleeper\.log/);
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(signals.length).toBeGreaterThan(0);
    expect(signals.every((s) => s.aborted)).toBe(true);
  });

  it('probes again after a probe that hung, and returns once one says ready', async () => {
    const service = sleeper();
    let probes = 0;
    await waitReady(service, 'the slow service', 10_000, () => {
      probes++;
      return probes === 1 ? new Promise<boolean>(() => undefined) : Promise.resolve(true);
    });
    expect(probes).toBe(2);
  });

  it('fails at once, with the exit code and the log, when the service exits before it is ready', async () => {
    const service = spawnService({
      name: 'quitter',
      command: 'sh',
      args: ['-c', 'exit 3'],
      logFile: join(tempDir('switchyard-services-').path, 'quitter.log'),
    });
    await expect(waitReady(service, 'the quitter', 10_000, async () => false)).rejects.toThrow(
      /the quitter exited with 3 before it was ready; see .*quitter\.log/,
    );
  });
});

describe("the broker's readiness probe", () => {
  it('counts a listener that accepts and never speaks AMQP as not ready', async () => {
    const sockets: Socket[] = [];
    const silent: Server = createServer((socket) => sockets.push(socket));
    await new Promise<void>((res) => silent.listen(0, '127.0.0.1', res));
    const port = (silent.address() as { port: number }).port;
    try {
      await expect(completesHandshake(`amqp://127.0.0.1:${port}`, 300)).rejects.toThrow(/ETIMEDOUT/);
    } finally {
      for (const socket of sockets) socket.destroy();
      silent.close();
    }
  });
});
