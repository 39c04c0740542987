import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { createRootLogger } from '../../src/logging.ts';
import { startLocalEnvironment, type LocalEnvironment } from '../../src/local/environment.ts';
import { alive } from '../../src/local/control.ts';
import type { LocalStore } from '../../src/cloud/local/stack-spec.ts';
import { tempDir } from '../support/temp-dir.ts';

/** A whole local environment (moto, RabbitMQ, Temporal, DNS, worker) in a temporary data dir, on free ports. */
export interface TestEnvironment {
  localEnvironment: LocalEnvironment;
  client: Client;
  dataDir: string;
  /** Stops everything and returns what was still running afterwards (should be nothing). */
  stop(): Promise<{ leftoverPids: number[]; leftoverStacks: string[] }>;
}

export async function startTestEnvironment(
  seedItems: number,
  options: { uiPort?: number; environmentsDir?: string; store?: LocalStore; persistTemporal?: boolean } = {},
): Promise<TestEnvironment> {
  const dataDir = tempDir('switchyard-local-').path;
  const localEnvironment = await startLocalEnvironment({
    dataDir,
    envs: ['dev'],
    environmentsDir: options.environmentsDir,
    temporalPort: 0,
    uiPort: options.uiPort,
    persistTemporal: options.persistTemporal ?? false,
    dnsPort: 0,
    seedItems,
    store: options.store ?? 'sqlite',
    log: createRootLogger('local-env-test', { level: 'warn' }),
  });
  const connection = await Connection.connect({ address: localEnvironment.state.temporalAddress });
  return {
    localEnvironment,
    client: new Client({ connection }),
    dataDir,
    async stop() {
      await connection.close();
      const pids = Object.values(localEnvironment.state.processes).filter((pid) => pid !== process.pid);
      await localEnvironment.stop();
      const stacksDir = join(dataDir, 'stacks');
      const leftoverStacks = existsSync(stacksDir) ? readdirSync(stacksDir).filter((n) => !n.startsWith('.')) : [];
      const leftoverPids = pids.filter(alive);
      return { leftoverPids, leftoverStacks };
    },
  };
}
