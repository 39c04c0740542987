/** Starting real sync nodes on loopback with SQLite files in temp dirs, and talking to them. */

import { join } from 'node:path';
import { request } from 'node:http';
import pino from 'pino';
import { startServer, type RunningServer, type StartOptions } from '../../server/app.ts';
import { signToken } from '../../src/navcloud/token.ts';
import { tempDir } from '../support/temp-dir.ts';

export const SECRET = 'test-secret-0123456789abcdef-0123456789';

export interface TestNode extends RunningServer {
  dir: string;
  token(user: string, admin?: boolean): Promise<string>;
  stop(): Promise<void>;
}

export async function startTestNode(
  options: Partial<StartOptions> = {},
  dir = tempDir('navcloud-'),
): Promise<TestNode> {
  const server = await startServer({
    jwtSecret: SECRET,
    store: `sqlite:${join(dir.path, 'navcloud.sqlite')}`,
    nodeId: 'test-node',
    logger: pino({ level: 'silent' }),
    ...options,
  });
  return {
    ...server,
    dir: dir.path,
    token: (user, admin = false) => signToken(SECRET, user, { admin }),
    async stop() {
      await server.close();
      dir.remove();
    },
  };
}

export interface Answer {
  status: number;
  headers: Headers;
  text: string;
  json: any;
}

export async function call(
  node: { url: string },
  method: string,
  path: string,
  options: { token?: string; body?: unknown; raw?: string; headers?: Record<string, string> } = {},
): Promise<Answer> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  let body: string | undefined = options.raw;
  if (options.body !== undefined) {
    body = JSON.stringify(options.body);
    headers['content-type'] ??= 'application/json';
  }
  const response = await fetch(`${node.url}${path}`, { method, headers, body });
  const text = await response.text();
  let json: unknown;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  return { status: response.status, headers: response.headers, text, json };
}

/** A stream read line by line as it arrives. */
export interface StreamReader {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  /** Resolves with the next message matching `predicate`, rejects after timeoutMs. */
  next(predicate?: (message: any) => boolean, timeoutMs?: number): Promise<any>;
  messages: any[];
  ended: Promise<void>;
  close(): void;
}

export function openStream(node: { url: string }, token: string, since?: string): Promise<StreamReader> {
  const url = new URL(`/v1/stream${since ? `?since=${encodeURIComponent(since)}` : ''}`, node.url);
  return new Promise((resolve, reject) => {
    const req = request(url, { headers: { authorization: `Bearer ${token}` } }, (res) => {
      const messages: any[] = [];
      let consumed = 0;
      let waiter: (() => void) | undefined;
      let buffer = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buffer += chunk;
        let newline;
        while ((newline = buffer.indexOf('\n')) >= 0) {
          messages.push(JSON.parse(buffer.slice(0, newline)));
          buffer = buffer.slice(newline + 1);
        }
        waiter?.();
      });
      const ended = new Promise<void>((done) => {
        res.on('end', () => {
          waiter?.();
          done();
        });
        res.on('close', () => {
          waiter?.();
          done();
        });
      });
      let finished = false;
      void ended.then(() => (finished = true));
      resolve({
        status: res.statusCode ?? 0,
        headers: res.headers,
        messages,
        ended,
        close: () => req.destroy(),
        async next(predicate = () => true, timeoutMs = 10_000) {
          const deadline = Date.now() + timeoutMs;
          for (;;) {
            while (consumed < messages.length) {
              const message = messages[consumed++];
              if (predicate(message)) return message;
            }
            if (finished) throw new Error(`stream ended without the expected message; got ${JSON.stringify(messages)}`);
            const left = deadline - Date.now();
            if (left <= 0)
              throw new Error(`no expected stream message within ${timeoutMs} ms; got ${JSON.stringify(messages)}`);
            await new Promise<void>((wake) => {
              const timer = setTimeout(wake, left);
              waiter = () => {
                clearTimeout(timer);
                wake();
              };
            });
          }
        },
      });
    });
    req.on('error', reject);
    req.end();
  });
}

/** Every line of GET /admin/export. */
export async function exportAll(node: { url: string }, adminToken: string, since?: string): Promise<any[]> {
  const answer = await call(node, 'GET', `/admin/export${since ? `?since=${since}` : ''}`, { token: adminToken });
  if (answer.status !== 200) throw new Error(`export answered ${answer.status}: ${answer.text}`);
  return answer.text
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line));
}

/** Copies `from`'s whole export into `to` (the last delta of a switch); answers the export's end cursor. */
export async function copyAll(from: { url: string }, to: { url: string }, adminToken: string): Promise<string> {
  const exported = await call(from, 'GET', '/admin/export', { token: adminToken });
  const imported = await call(to, 'POST', '/admin/import', {
    token: adminToken,
    raw: exported.text,
    headers: { 'content-type': 'application/x-ndjson' },
  });
  if (imported.status !== 200) throw new Error(`import answered ${imported.status}: ${imported.text}`);
  return (JSON.parse(exported.text.trim().split('\n').at(-1)!) as { cursor: string }).cursor;
}

/** A change of a node's fence over HTTP expecting it as it reads it now (GET /admin/fence), by `test`. */
export async function changeFenceAsRead(
  node: { url: string },
  adminToken: string,
  path: '/admin/fence' | '/admin/forward' | '/admin/unfence',
  body: Record<string, unknown> = {},
): Promise<Answer> {
  const now = (await call(node, 'GET', '/admin/fence', { token: adminToken })).json as {
    epoch: number;
    mode: string;
    cursor: string;
  };
  const cursor = path === '/admin/forward' ? { cursor: now.cursor } : {};
  return call(node, 'POST', path, {
    token: adminToken,
    body: { expected: { epoch: now.epoch, mode: now.mode }, by: 'test', ...cursor, ...body },
  });
}
