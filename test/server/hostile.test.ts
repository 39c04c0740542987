/**
 * A hostile client against a real node on loopback, one block per class of attack: forged and
 * malformed tokens, the admin API, input that is deep, huge or poisoned, imports that would break
 * the store, and one client trying to make the node hold its memory. Every refusal is one specific
 * answer, and the node keeps serving afterwards.
 */
import { createHmac } from 'node:crypto';
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeCursor, encodeCursor } from '../../src/navcloud/cursor.ts';
import { signToken } from '../../src/navcloud/token.ts';
import { call, exportAll, openStream, SECRET, startTestNode, type StreamReader, type TestNode } from './helpers.ts';

let node: TestNode;
let alice: string;
let admin: string;

beforeAll(async () => {
  node = await startTestNode();
  alice = await node.token('alice');
  admin = await node.token('ops', true);
});
afterAll(async () => {
  await node?.stop();
});

const b64 = (value: unknown) =>
  Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');

/** A JWT with exactly this header and these claims, signed HS256 with `secret` whatever the header says. */
function forge(header: Record<string, unknown>, claims: unknown, secret = SECRET): string {
  const input = `${b64(header)}.${b64(claims)}`;
  return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
}

const now = () => Math.floor(Date.now() / 1000);

/** A request sent exactly as given: the path is not normalised (fetch would resolve `.` and `..`). */
function raw(
  method: string,
  path: string,
  headers: Record<string, string> = {},
  body?: string,
): Promise<{ status: number; headers: Record<string, unknown>; json: any }> {
  return new Promise((resolve, reject) => {
    const url = new URL(node.url);
    const req = request({ host: url.hostname, port: url.port, method, path, headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, json: text ? JSON.parse(text) : undefined }),
      );
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function stillServing(): Promise<void> {
  expect((await call(node, 'GET', '/v1/inbox', { token: alice })).status).toBe(200);
}

describe('hostile clients: tokens', () => {
  it('refuses forged and malformed tokens with 401, a fixed challenge and a fixed message, and stays up', async () => {
    const valid = await signToken(SECRET, 'alice');
    const [header, payload, signature] = valid.split('.') as [string, string, string];
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    // 32 bytes take 43 characters: the last one carries two unused bits, so this decodes to the same bytes.
    const lowBits = `${header}.${payload}.${signature.slice(0, -1)}${alphabet[alphabet.indexOf(signature.at(-1)!) ^ 1]}`;
    const hs512 = (() => {
      const input = `${b64({ alg: 'HS512', typ: 'JWT' })}.${b64({ sub: 'alice', exp: now() + 60 })}`;
      return `${input}.${createHmac('sha512', SECRET).update(input).digest('base64url')}`;
    })();
    const cases: Array<[string, string, string]> = [
      ['a padded signature', `${valid}=`, 'bad-token'],
      ['changed unused low bits of the signature', lowBits, 'bad-token'],
      ['a padded header', `${header}=.${payload}.${signature}`, 'bad-token'],
      ['alg none', `${b64({ alg: 'none' })}.${payload}.`, 'bad-token'],
      ['alg HS512', hs512, 'bad-token'],
      [
        'an alg holding a non-Latin-1 character',
        forge({ alg: 'HS256\u4e00', typ: 'JWT' }, { sub: 'alice', exp: now() + 60 }),
        'bad-token',
      ],
      ['a crit header', forge({ alg: 'HS256', crit: ['exp'] }, { sub: 'alice', exp: now() + 60 }), 'bad-token'],
      ['exp far in the past (-1e13)', forge({ alg: 'HS256' }, { sub: 'alice', exp: -1e13 }), 'token-expired'],
      ['no exp', forge({ alg: 'HS256' }, { sub: 'alice' }), 'bad-token'],
      ['exp as a string', forge({ alg: 'HS256' }, { sub: 'alice', exp: String(now() + 60) }), 'bad-token'],
      [
        'nbf an hour ahead',
        forge({ alg: 'HS256' }, { sub: 'alice', exp: now() + 7200, nbf: now() + 3600 }),
        'token-not-yet-valid',
      ],
      ['no sub', forge({ alg: 'HS256' }, { exp: now() + 60 }), 'bad-token'],
      ['a sub with a slash', forge({ alg: 'HS256' }, { sub: 'al/ice', exp: now() + 60 }), 'bad-token'],
      ['a sub with a control character', forge({ alg: 'HS256' }, { sub: 'ali\u0007ce', exp: now() + 60 }), 'bad-token'],
      ['claims that are an array', forge({ alg: 'HS256' }, [1, 2]), 'bad-token'],
      ['another secret', await signToken('another-secret-entirely-0123456789abcdef', 'alice'), 'bad-signature'],
      ['a 5,000-character token', `${header}.${'A'.repeat(5000)}.${signature}`, 'bad-token'],
      ['four parts', `${valid}.${signature}`, 'bad-token'],
    ];
    for (const [what, token, code] of cases) {
      const answer = await call(node, 'GET', '/v1/inbox', { headers: { authorization: `Bearer ${token}` } });
      expect({ what, status: answer.status, code: answer.json?.error?.code }).toEqual({ what, status: 401, code });
      expect(answer.headers.get('www-authenticate')).toBe('Bearer error="invalid_token"');
      expect(answer.json.error.message).not.toContain('\u4e00');
    }
    await stillServing();
  });

  it('accepts exp and nbf within the small clock tolerance, and any well-formed exp ahead', async () => {
    const slightlyExpired = forge({ alg: 'HS256' }, { sub: 'alice', exp: now() - 2 });
    const slightlyEarly = forge({ alg: 'HS256' }, { sub: 'alice', exp: now() + 60, nbf: now() + 2 });
    const fractional = forge({ alg: 'HS256' }, { sub: 'alice', exp: now() + 60.123 });
    const farAhead = forge({ alg: 'HS256' }, { sub: 'alice', exp: 1e300 });
    for (const token of [slightlyExpired, slightlyEarly, fractional, farAhead]) {
      // Twice: the second answer comes from the cache of verified tokens.
      for (let i = 0; i < 2; i++) expect((await call(node, 'GET', '/v1/inbox', { token })).status).toBe(200);
    }
  });
});

describe('hostile clients: the admin API', () => {
  it('answers 403 to user tokens on every admin route, and refuses admin tokens that live too long', async () => {
    for (const [method, path] of [
      ['GET', '/admin/export'],
      ['POST', '/admin/import'],
      ['POST', '/admin/fence'],
      ['POST', '/admin/unfence'],
      ['POST', '/admin/drain'],
      ['POST', '/admin/undrain'],
      ['GET', '/admin/stats'],
      ['GET', '/admin/settled'],
    ] as const) {
      expect((await call(node, method, path, { token: alice })).status).toBe(403);
    }
    const longLived = await signToken(SECRET, 'ops', { admin: true, expiresIn: 24 * 3600 });
    const refused = await call(node, 'GET', '/admin/stats', { token: longLived });
    expect([refused.status, refused.json.error.code]).toEqual([401, 'bad-token']);
    expect(refused.json.error.message).toMatch(/admin tokens may live at most 900 s/);
    expect((await call(node, 'GET', '/admin/stats', { token: admin })).status).toBe(200);
  });
});

describe('hostile clients: input', () => {
  it('refuses JSON nested 100,000 levels deep on PUT and on shares with 400 before parsing it, and stays up', async () => {
    const deep = `{"type":"trip","data":{"a":${'['.repeat(100_000)}${']'.repeat(100_000)}}}`;
    const put = await call(node, 'PUT', '/v1/items/deep-1', {
      token: alice,
      raw: deep,
      headers: { 'content-type': 'application/json' },
    });
    expect([put.status, put.json.error.code]).toEqual([400, 'too-deep']);
    expect(
      (await call(node, 'PUT', '/v1/items/deep-1', { token: alice, body: { type: 'trip', data: {} } })).status,
    ).toBe(201);
    const share = await call(node, 'POST', '/v1/items/deep-1/shares', {
      token: alice,
      raw: `{"to":${'{"a":'.repeat(500)}1${'}'.repeat(500)}}`,
      headers: { 'content-type': 'application/json' },
    });
    expect([share.status, share.json.error.code]).toEqual([400, 'too-deep']);
    // Brackets inside strings are text, not nesting.
    const text = await call(node, 'PUT', '/v1/items/deep-2', {
      token: alice,
      body: { type: 'trip', data: { note: '['.repeat(1000) } },
    });
    expect(text.status).toBe(201);
    await stillServing();
  });

  it('refuses a __proto__ key anywhere in item data with 400 and stores nothing; other keys are stored as sent', async () => {
    for (const key of ['__proto__', '\\u005f_proto__']) {
      const body = `{"type":"place","data":{"name":"x","nested":{"${key}":{"admin":true}}}}`;
      const answer = await call(node, 'PUT', '/v1/items/poison-1', {
        token: alice,
        raw: body,
        headers: { 'content-type': 'application/json' },
      });
      expect([answer.status, answer.json.error.code]).toEqual([400, 'forbidden-key']);
    }
    expect((await call(node, 'GET', '/v1/items/poison-1', { token: alice })).status).toBe(404);
    const data = { constructor: { prototype: { admin: true } }, toString: 'text', hasOwnProperty: 1 };
    expect(
      (await call(node, 'PUT', '/v1/items/faithful-1', { token: alice, body: { type: 'place', data } })).status,
    ).toBe(201);
    expect((await call(node, 'GET', '/v1/items/faithful-1', { token: alice })).json.data).toEqual(data);
  });

  it('refuses the ids . and .. on every item route', async () => {
    const json = { authorization: `Bearer ${alice}`, 'content-type': 'application/json' };
    for (const id of ['.', '..']) {
      for (const [method, path, body] of [
        ['GET', `/v1/items/${id}`],
        ['PUT', `/v1/items/${id}`, '{"type":"trip","data":{}}'],
        ['DELETE', `/v1/items/${id}`],
        ['POST', `/v1/items/${id}/shares`, '{"to":"bob"}'],
        ['DELETE', `/v1/items/${id}/shares/bob`],
      ] as Array<[string, string, string?]>) {
        const answer = await raw(method, path, json, body);
        expect({ method, path, status: answer.status, code: answer.json.error.code }).toEqual({
          method,
          path,
          status: 400,
          code: 'invalid-id',
        });
      }
    }
  });
});

describe('hostile clients: import', () => {
  const line = (id: string, seq: number, extra: Record<string, unknown> = {}) =>
    JSON.stringify({
      kind: 'item',
      id,
      owner: 'importer',
      type: 'trip',
      rev: '1-abc',
      deleted: false,
      data: { id },
      shares: [],
      cursor: encodeCursor(seq),
      updatedAt: '2026-01-01T00:00:00.000Z',
      ...extra,
    });
  const importText = (text: string) =>
    call(node, 'POST', '/admin/import', {
      token: admin,
      raw: text,
      headers: { 'content-type': 'application/x-ndjson' },
    });

  it('says exactly which lines were imported when one is refused, and those lines are in the store', async () => {
    const deepLine = `{"kind":"item","data":${'['.repeat(10_000)}${']'.repeat(10_000)}}`;
    const answer = await importText(
      [line('imp-1', 900_001), '', line('imp-2', 900_002), deepLine, line('imp-3', 900_003)].join('\n'),
    );
    expect([answer.status, answer.json.error.code]).toEqual([400, 'invalid-import-line']);
    expect(answer.json.error.message).toMatch(/^line 4: JSON nests deeper than 64 levels; lines 1-3 were imported/);
    const ids = (await exportAll(node, admin))
      .filter((l) => l.kind === 'item' && l.owner === 'importer')
      .map((l) => l.id);
    expect(ids).toEqual(['imp-1', 'imp-2']);
    const first = await importText(`${deepLine}\n${line('imp-4', 900_004)}`);
    expect(first.json.error.message).toMatch(/^line 1: .*; no line was imported/);
  });

  it('refuses lines that would break later writes or reads, and writes go on afterwards', async () => {
    const refused: Array<[string, string]> = [
      [line('big-seq', 2 ** 52), 'cursor stands for change'],
      [line('big-rev', 900_010, { rev: '9007199254740991-a' }), 'rev must be a revision'],
      [line('bad-rev', 900_011, { rev: 'not-a-rev' }), 'rev must be a revision'],
      [line('.', 900_012), 'id must be'],
      [line('..', 900_013), 'id must be'],
      [line('bad-owner', 900_014, { owner: 'a/b' }), 'owner must be'],
      [line('bad-share', 900_015, { shares: ['importer'] }), 'shares must be'],
      [line('bad-time', 900_016, { updatedAt: 'tomorrow' }), 'updatedAt must be'],
      ['{"kind":"item","id":"poison","data":{"__proto__":{"x":1}}}', 'may not hold a "__proto__" key'],
    ];
    for (const [text, message] of refused) {
      const answer = await importText(text);
      expect({ text: text.slice(0, 60), status: answer.status, message: answer.json.error.message }).toEqual({
        text: text.slice(0, 60),
        status: 400,
        message: expect.stringContaining(message),
      });
    }
    expect((await importText(line('top', 2 ** 50))).status).toBe(200);
    const put = await call(node, 'PUT', '/v1/items/after-import', { token: alice, body: { type: 'trip', data: {} } });
    expect(put.status).toBe(201);
    const feed = await call(node, 'GET', '/v1/changes?limit=1000', { token: alice });
    expect(decodeCursor(feed.json.next)).toBe(2 ** 50 + 1);
  });
});

describe('hostile clients: memory held for one client', () => {
  it('ends a /v1/changes page by size, whatever the limit asked for', async () => {
    const bob = await node.token('big-bob');
    const blob = 'b'.repeat(250 * 1024);
    for (let i = 0; i < 24; i++)
      expect(
        (await call(node, 'PUT', `/v1/items/big-${i}`, { token: bob, body: { type: 'route', data: { blob } } })).status,
      ).toBe(201);
    const page = await call(node, 'GET', '/v1/changes?limit=1000', { token: bob });
    expect(page.json.changes.length).toBeLessThan(24);
    expect(Buffer.byteLength(page.text)).toBeLessThan(4 * 1024 * 1024 + 300 * 1024);
  });

  it('lets one user hold at most 64 streams on a node, and others still connect', async () => {
    const greedy = await node.token('greedy');
    const streams: StreamReader[] = [];
    try {
      for (let i = 0; i < 64; i++) streams.push(await openStream(node, greedy));
      expect(streams.every((s) => s.status === 200)).toBe(true);
      const refused = await call(node, 'GET', '/v1/stream', { token: greedy });
      expect([refused.status, refused.json.error.code]).toEqual([429, 'too-many-streams']);
      const other = await openStream(node, alice);
      streams.push(other);
      expect(other.status).toBe(200);
    } finally {
      for (const stream of streams) stream.close();
    }
  });
});
