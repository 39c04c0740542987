/**
 * Test stacks: real sync servers started in-process (real sockets, one real SQLite file in a temp
 * dir). The nodes of one stack share the file, as a stack's processes do, and one memory bus
 * instance, which stands in for the RabbitMQ fan-out between processes (the memory bus does not
 * cross server instances on its own).
 */

import { createServer, request, type Server } from 'node:http';
import { join } from 'node:path';
import { once } from 'node:events';
import { startServer, type RunningServer } from '../../server/app.ts';
import { MemoryBus } from '../../server/bus/memory.ts';
import type { StackOutputs } from '../../src/cloud/ports.ts';
import { testLogger } from '../support/logger.ts';
import { tempDir } from '../support/temp-dir.ts';

export const JWT_SECRET = 'test-secret-for-smoke-and-fleet-0123456789';

export interface TestStack {
  outputs: StackOutputs;
  servers: RunningServer[];
  sqliteFile: string;
  close(): Promise<void>;
}

export interface TestStackOptions {
  nodes?: number;
  heartbeatMs?: number;
  /** One loopback address per node, all on `port` (as a local stack is laid out); default 127.0.0.1 with any port. */
  hosts?: string[];
  port?: number;
  retryAfterSeconds?: number;
  jwtSecret?: string;
  /** How long writes are held while the stack is fenced (the server's default otherwise). */
  holdMs?: number;
}

export async function startTestStack(options: TestStackOptions = {}): Promise<TestStack> {
  const dir = tempDir('navcloud-test-').path;
  const sqliteFile = join(dir, 'store.sqlite');
  const bus = new MemoryBus();
  const count = options.hosts?.length ?? options.nodes ?? 2;
  const servers: RunningServer[] = [];
  try {
    for (let i = 0; i < count; i++) {
      servers.push(
        await startServer({
          jwtSecret: options.jwtSecret ?? JWT_SECRET,
          host: options.hosts?.[i] ?? '127.0.0.1',
          port: options.port ?? 0,
          store: `sqlite:${sqliteFile}`,
          busInstance: bus,
          heartbeatMs: options.heartbeatMs ?? 200,
          nodeId: `node-${i + 1}`,
          retryAfterSeconds: options.retryAfterSeconds ?? 1,
          ...(options.holdMs === undefined ? {} : { holdMs: options.holdMs }),
          shutdownGraceMs: 1000,
          logger: testLogger,
        }),
      );
    }
  } catch (err) {
    await Promise.all(servers.map((s) => s.close()));
    throw err;
  }
  const nodes = servers.map((s) => s.url);
  return {
    outputs: {
      endpoint: nodes[0]!,
      adminUrl: nodes[0]!,
      nodes,
      dnsTarget: { kind: 'a', addresses: servers.map((s) => new URL(s.url).hostname) },
    },
    servers,
    sqliteFile,
    async close() {
      await Promise.all(servers.map((s) => s.close()));
    },
  };
}

/**
 * A forwarding HTTP proxy in front of `target`, with a hook that sees each request's path and may
 * rewrite its headers: what a misconfigured gateway in front of a stack looks like.
 */
export async function startProxy(
  target: string,
  /** Sees each request before it is passed on; the request waits for the promise it answers. */
  rewrite: (headers: Record<string, string | string[] | undefined>, path: string) => void | Promise<void>,
): Promise<{ url: string; close(): Promise<void> }> {
  const server: Server = createServer((incoming, outgoing) => {
    const headers = { ...incoming.headers };
    void Promise.resolve(rewrite(headers, incoming.url ?? '/')).then(() => {
      const upstream = request(new URL(incoming.url ?? '/', target), { method: incoming.method, headers }, (answer) => {
        outgoing.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(outgoing);
      });
      upstream.on('error', () => outgoing.destroy());
      incoming.pipe(upstream);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
