import type {} from 'vitest';
import type { TestProject } from 'vitest/node';
import { resolve } from 'node:path';
import { startDevServer, type DevServer } from '../../src/temporal/dev-server.ts';
import { freePort } from '../../src/net.ts';
import { repoRoot } from '../../src/config/environment.ts';

// One dev server for the whole run: the SDK's own launcher allows it only 5 s to start.
let server: DevServer | undefined;

export async function setup(project: TestProject) {
  const port = await freePort();
  server = await startDevServer({ port, logFile: resolve(repoRoot, 'test-artifacts/temporal-dev-server.log') });
  project.provide('temporalAddress', server.address);
}

export async function teardown() {
  await server?.stop();
}

declare module 'vitest' {
  export interface ProvidedContext {
    temporalAddress: string;
  }
}
