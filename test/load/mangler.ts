/**
 * A broken middlebox for the client load's own checks: it forwards everything to a sync node but
 * rewrites the lines of every stream, so a test can make events arrive twice or not at all.
 */
import { once } from 'node:events';
import { createServer, request } from 'node:http';

export async function startStreamMangler(
  host: string,
  port: number,
  target: string,
  rewrite: (line: string) => string[],
): Promise<{ close(): Promise<void> }> {
  const server = createServer((incoming, outgoing) => {
    const upstream = request(new URL(incoming.url ?? '/', target), { method: incoming.method, headers: incoming.headers }, (answer) => {
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
    });
    upstream.on('error', () => outgoing.destroy());
    outgoing.on('close', () => upstream.destroy());
    incoming.pipe(upstream);
  });
  server.listen(port, host);
  await once(server, 'listening');
  return {
    close: () => new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}
