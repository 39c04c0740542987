/**
 * Broken middleboxes for the client load's own checks: each forwards everything to a sync node but
 * rewrites what comes back, so a test can make events arrive twice or not at all, or an applied
 * write look failed.
 */
import { once } from 'node:events';
import { createServer, request, type Server } from 'node:http';

/** Rewrites the lines of every stream. */
export async function startStreamMangler(
  host: string,
  port: number,
  target: string,
  rewrite: (line: string) => string[],
): Promise<{ close(): Promise<void> }> {
  const server = createServer((incoming, outgoing) => {
    const upstream = request(
      new URL(incoming.url ?? '/', target),
      { method: incoming.method, headers: incoming.headers },
      (answer) => {
        outgoing.writeHead(answer.statusCode ?? 502, answer.headers);
        if (!incoming.url?.startsWith('/v1/stream') || answer.statusCode !== 200) {
          answer.pipe(outgoing);
          return;
        }
        let pending = '';
        answer.setEncoding('utf8');
        answer.on('data', (chunk: string) => {
          pending += chunk;
          const lines = pending.split('\n');
          pending = lines.pop() ?? '';
          const out = lines.flatMap((line) => rewrite(line).map((l) => `${l}\n`)).join('');
          if (out) outgoing.write(out);
        });
        answer.on('end', () => outgoing.end());
        answer.on('error', () => outgoing.destroy());
      },
    );
    upstream.on('error', () => outgoing.destroy());
    outgoing.on('close', () => upstream.destroy());
    incoming.pipe(upstream);
  });
  return listening(server, host, port);
}

/**
 * A store that fails after it applied a write, as a Riak write that missed its quorum can: it
 * forwards everything to a sync node, but answers every other PUT the node took with 503
 * `store-unavailable`, as the node would.
 */
export async function startAnswerMangler(
  host: string,
  port: number,
  target: string,
): Promise<{ close(): Promise<void> }> {
  let puts = 0;
  const server = createServer((incoming, outgoing) => {
    const upstream = request(
      new URL(incoming.url ?? '/', target),
      { method: incoming.method, headers: incoming.headers },
      (answer) => {
        if (incoming.method === 'PUT' && (answer.statusCode ?? 0) < 300 && puts++ % 2 === 1) {
          answer.resume();
          outgoing.writeHead(503, { 'content-type': 'application/json', 'retry-after': '1' });
          outgoing.end(
            JSON.stringify({ error: { code: 'store-unavailable', message: 'the store did not answer in time' } }),
          );
          return;
        }
        outgoing.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(outgoing);
      },
    );
    upstream.on('error', () => outgoing.destroy());
    outgoing.on('close', () => upstream.destroy());
    incoming.pipe(upstream);
  });
  return listening(server, host, port);
}

async function listening(server: Server, host: string, port: number): Promise<{ close(): Promise<void> }> {
  server.listen(port, host);
  await once(server, 'listening');
  return {
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
