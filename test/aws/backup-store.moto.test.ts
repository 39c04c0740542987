import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { HeadObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { S3BackupStore } from '../../src/cloud/aws/backup-store.ts';
import type { ExportEndLine, ExportItemLine } from '../../src/navcloud/protocol.ts';
import { startMoto, type Moto } from '../support/moto.ts';
import { createBucket, motoClients } from './moto-helpers.ts';
import { testLogger } from '../support/logger.ts';

const bucket = 'switchyard-backups';
let moto: Moto;

beforeAll(async () => {
  moto = await startMoto();
});
afterAll(async () => {
  await moto?.stop();
});
beforeEach(async () => {
  await moto.reset();
  await createBucket(moto, bucket);
});

function store(now?: () => Date) {
  return new S3BackupStore({
    logger: testLogger,
    s3: motoClients(moto).s3,
    bucket,
    prefix: 'backups/',
    ...(now ? { now } : {}),
  });
}

/** Export lines (src/navcloud/protocol.ts): `count` items, then the closing end line. */
async function* itemLines(count: number): AsyncGenerator<string> {
  for (let i = 0; i < count; i += 1) {
    const line: ExportItemLine = {
      kind: 'item',
      id: `item-${i}`,
      owner: `user-${i % 97}`,
      type: 'trip',
      rev: `${i}-a`,
      deleted: false,
      data: { n: i },
      shares: [],
      cursor: String(i + 1),
      updatedAt: '2026-11-26T05:00:00.000Z',
    };
    yield JSON.stringify(line);
  }
  const end: ExportEndLine = { kind: 'end', cursor: String(count), items: count };
  yield JSON.stringify(end);
}

describe('S3BackupStore on moto', () => {
  it('writes 100,000 items, finds them as latest, reads them back verified', async () => {
    const backups = store();
    const written = await backups.write(
      { env: 'dev', sourceStack: 'navcloud-dev-blue-abc123', cursor: '100000' },
      itemLines(100_000),
    );
    expect(written.items).toBe(100_000);
    expect(written.key).toMatch(/^backups\/dev\/\d{8}T\d{6}Z-[0-9a-f]{8}\/manifest\.json$/);

    const latest = await backups.latest('dev');
    expect(latest).toEqual(written);

    const lines: string[] = [];
    for await (const line of backups.read(latest!)) lines.push(line);
    // The manifest counts items; the export's end line travels with them.
    expect(lines).toHaveLength(100_001);
    expect(JSON.parse(lines[99_999]!).id).toBe('item-99999');
    expect(JSON.parse(lines[100_000]!)).toEqual({ kind: 'end', cursor: '100000', items: 100_000 });
  });

  it('streams a data object larger than one multipart part', async () => {
    // Random payloads barely compress, so about 6 MiB of them need two 5 MiB parts.
    const { randomBytes } = await import('node:crypto');
    async function* big() {
      for (let i = 0; i < 2_000; i += 1)
        yield JSON.stringify({ id: `i${i}`, blob: randomBytes(3_000).toString('base64') });
    }
    const written = await store().write({ env: 'dev', sourceStack: 's', cursor: 'c' }, big());
    expect(written.bytes).toBeGreaterThan(5 * 1024 * 1024);
    // A multipart object's ETag ends in -<number of parts>.
    const head = await motoClients(moto).s3.send(new HeadObjectCommand({ Bucket: bucket, Key: written.dataKey }));
    expect(head.ETag).toMatch(/-2"?$/);
    let count = 0;
    for await (const _ of store().read(written)) count += 1;
    expect(count).toBe(2_000);
  });

  it('skips a half-written backup (data without manifest) and a manifest whose data is missing', async () => {
    let t = Date.parse('2026-01-01T00:00:00Z');
    const backups = store(() => new Date((t += 60_000)));
    const good = await backups.write({ env: 'dev', sourceStack: 's1', cursor: '10' }, itemLines(10));
    // A newer writer that crashed before its manifest:
    await motoClients(moto).s3.send(
      new PutObjectCommand({
        Bucket: bucket,
        Key: 'backups/dev/20270101T000000Z-deadbeef/data.ndjson.gz',
        Body: 'partial',
      }),
    );
    // A newer manifest whose data object is gone:
    const orphan = {
      ...good,
      key: 'backups/dev/20270102T000000Z-cafebabe/manifest.json',
      dataKey: 'backups/dev/20270102T000000Z-cafebabe/data.ndjson.gz',
    };
    await motoClients(moto).s3.send(
      new PutObjectCommand({ Bucket: bucket, Key: orphan.key, Body: JSON.stringify(orphan) }),
    );

    expect((await backups.latest('dev'))?.key).toBe(good.key);
    expect((await backups.list('dev')).map((b) => b.key)).toEqual([good.key]);
    expect(await backups.latest('prod')).toBeUndefined();
  });

  it('lists newest first and prunes all but the newest N, leaving other environments alone', async () => {
    let t = Date.parse('2026-01-01T00:00:00Z');
    const backups = store(() => new Date((t += 60_000)));
    const keys: string[] = [];
    for (let i = 0; i < 4; i += 1)
      keys.push((await backups.write({ env: 'dev', sourceStack: 's', cursor: String(i) }, itemLines(3))).key);
    const other = await backups.write({ env: 'stage', sourceStack: 's', cursor: '0' }, itemLines(1));

    expect((await backups.list('dev')).map((b) => b.key)).toEqual([...keys].reverse());
    const deleted = await backups.prune('dev', 2);
    expect(deleted.sort()).toEqual(
      keys
        .slice(0, 2)
        .flatMap((k) => [k.replace('manifest.json', 'data.ndjson.gz'), k])
        .sort(),
    );
    expect((await backups.list('dev')).map((b) => b.key)).toEqual([keys[3], keys[2]]);
    expect((await backups.latest('stage'))?.key).toBe(other.key);
  });

  it('refuses a backup whose data was replaced after the manifest was written', async () => {
    const backups = store();
    const written = await backups.write({ env: 'dev', sourceStack: 's', cursor: '5' }, itemLines(5));
    const { gzipSync } = await import('node:zlib');
    // Same size on purpose is impossible to guarantee, so the manifest's byte count is updated too:
    // only the SHA-256 can catch this one.
    const forged = gzipSync(Buffer.from([...Array(5).keys()].map((i) => `{"id":"forged-${i}"}\n`).join('')));
    await motoClients(moto).s3.send(new PutObjectCommand({ Bucket: bucket, Key: written.dataKey, Body: forged }));
    const tampered = { ...written, bytes: forged.byteLength };
    await motoClients(moto).s3.send(
      new PutObjectCommand({ Bucket: bucket, Key: written.key, Body: JSON.stringify(tampered) }),
    );

    const latest = await backups.latest('dev');
    expect(latest?.key).toBe(written.key);
    const read = async () => {
      for await (const _ of backups.read(latest!)) {
        /* drain */
      }
    };
    await expect(read()).rejects.toMatchObject({ code: 'ChecksumMismatch', retryable: false, resource: written.key });
  });

  it('leaves no backup behind when the lines fail mid-way, and passes their error through', async () => {
    const backups = store();
    async function* failing() {
      yield* itemLines(1_000);
      throw new Error('export stream from navcloud-dev-blue-1 closed early');
    }
    await expect(backups.write({ env: 'dev', sourceStack: 's', cursor: '1' }, failing())).rejects.toThrow(
      'export stream from navcloud-dev-blue-1 closed early',
    );
    expect(await backups.latest('dev')).toBeUndefined();
  });

  it('refuses a line with a newline in it', async () => {
    async function* bad() {
      yield '{"id":"a"}\n{"id":"b"}';
    }
    await expect(store().write({ env: 'dev', sourceStack: 's', cursor: '1' }, bad())).rejects.toMatchObject({
      code: 'InvalidBackup',
      retryable: false,
    });
    expect(await store().latest('dev')).toBeUndefined();
  });
});
