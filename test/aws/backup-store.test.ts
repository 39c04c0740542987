import { beforeEach, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { mockClient } from 'aws-sdk-client-mock';
import { GetObjectCommand, ListObjectsV2Command, S3Client, type GetObjectCommandOutput } from '@aws-sdk/client-s3';
import { S3BackupStore } from '../../src/cloud/aws/backup-store.ts';
import type { BackupManifest } from '../../src/cloud/ports.ts';
import { testLogger } from '../support/logger.ts';

const s3 = mockClient(S3Client);
const store = () =>
  new S3BackupStore({
    logger: testLogger,
    s3: new S3Client({ region: 'eu-west-1' }),
    bucket: 'b',
    prefix: 'backups/',
    pageSize: 2,
  });

/** What GetObject returns: a Node stream with the SDK's helpers. */
function body(data: Buffer | Readable): GetObjectCommandOutput['Body'] {
  const stream = data instanceof Readable ? data : Readable.from([data]);
  return Object.assign(stream, {
    transformToString: async () => (data as Buffer).toString('utf8'),
    transformToByteArray: async () => new Uint8Array(data as Buffer),
    transformToWebStream: () => {
      throw new Error('not used');
    },
  }) as GetObjectCommandOutput['Body'];
}

function backup(folder: string, lines: string[]): { manifest: BackupManifest; data: Buffer } {
  const text = lines.map((l) => `${l}\n`).join('');
  const data = gzipSync(Buffer.from(text));
  const manifest: BackupManifest = {
    key: `backups/dev/${folder}/manifest.json`,
    dataKey: `backups/dev/${folder}/data.ndjson.gz`,
    env: 'dev',
    sourceStack: 'navcloud-dev-blue-1',
    createdAt: '2026-11-26T05:00:00.000Z',
    items: lines.length,
    sha256: createHash('sha256').update(text).digest('hex'),
    cursor: '42',
    bytes: data.byteLength,
  };
  return { manifest, data };
}

beforeEach(() => s3.reset());

describe('S3BackupStore (aws-sdk-client-mock)', () => {
  // Pins the paging requests and splits a backup's objects across pages, which moto's ordering
  // never does; the moto suite covers half-written backups end to end.
  it('reads ListObjectsV2 page by page and skips half-written backups', async () => {
    const older = backup('20261124T000000Z-aaaa0001', ['{"id":"a"}']);
    const newest = backup('20261125T000000Z-aaaa0002', ['{"id":"b"}']);
    // Pages of two keys: the folders' objects are split across pages on purpose.
    s3.on(ListObjectsV2Command, { Prefix: 'backups/dev/', ContinuationToken: undefined }).resolves({
      IsTruncated: true,
      NextContinuationToken: 'p2',
      Contents: [
        { Key: older.manifest.dataKey, Size: older.manifest.bytes },
        { Key: older.manifest.key, Size: 300 },
      ],
    });
    s3.on(ListObjectsV2Command, { ContinuationToken: 'p2' }).resolves({
      IsTruncated: true,
      NextContinuationToken: 'p3',
      Contents: [
        { Key: newest.manifest.dataKey, Size: newest.manifest.bytes },
        { Key: 'backups/dev/20261126T000000Z-aaaa0003/data.ndjson.gz', Size: 10 },
      ],
    });
    s3.on(ListObjectsV2Command, { ContinuationToken: 'p3' }).resolves({
      IsTruncated: false,
      Contents: [{ Key: newest.manifest.key, Size: 300 }],
    });
    s3.on(GetObjectCommand, { Key: older.manifest.key }).callsFake(() => ({
      Body: body(Buffer.from(JSON.stringify(older.manifest))),
    }));
    s3.on(GetObjectCommand, { Key: newest.manifest.key }).callsFake(() => ({
      Body: body(Buffer.from(JSON.stringify(newest.manifest))),
    }));

    expect((await store().latest('dev'))?.key).toBe(newest.manifest.key);
    expect((await store().list('dev')).map((b) => b.key)).toEqual([newest.manifest.key, older.manifest.key]);
    expect(s3.commandCalls(ListObjectsV2Command).every((c) => c.args[0].input.MaxKeys === 2)).toBe(true);
    // The half-written folder (data, no manifest) was never opened.
    expect(s3.commandCalls(GetObjectCommand).some((c) => c.args[0].input.Key?.includes('aaaa0003'))).toBe(false);
  });

  // Manifest content that a crashed or foreign writer could leave; simplest to serve from a mock.
  it('skips a manifest that is not valid JSON or lacks a field', async () => {
    const good = backup('20261124T000000Z-aaaa0001', ['{"id":"a"}']);
    s3.on(ListObjectsV2Command).resolves({
      Contents: [
        { Key: good.manifest.dataKey, Size: good.manifest.bytes },
        { Key: good.manifest.key, Size: 1 },
        { Key: 'backups/dev/20261125T000000Z-bbbb0001/data.ndjson.gz', Size: 5 },
        { Key: 'backups/dev/20261125T000000Z-bbbb0001/manifest.json', Size: 5 },
        { Key: 'backups/dev/20261126T000000Z-cccc0001/data.ndjson.gz', Size: 5 },
        { Key: 'backups/dev/20261126T000000Z-cccc0001/manifest.json', Size: 5 },
      ],
    });
    s3.on(GetObjectCommand, { Key: good.manifest.key }).callsFake(() => ({
      Body: body(Buffer.from(JSON.stringify(good.manifest))),
    }));
    s3.on(GetObjectCommand, { Key: 'backups/dev/20261125T000000Z-bbbb0001/manifest.json' }).callsFake(() => ({
      Body: body(Buffer.from('{"key": "trunc')),
    }));
    s3.on(GetObjectCommand, { Key: 'backups/dev/20261126T000000Z-cccc0001/manifest.json' }).callsFake(() => ({
      Body: body(
        Buffer.from(
          JSON.stringify({
            ...good.manifest,
            key: 'backups/dev/20261126T000000Z-cccc0001/manifest.json',
            sha256: undefined,
          }),
        ),
      ),
    }));
    expect((await store().latest('dev'))?.key).toBe(good.manifest.key);
  });

  // moto never verifies checksums: the SHA-256 against the manifest is the adapter's own check.
  it('throws a non-retryable ChecksumMismatch naming the key when the data does not hash to the manifest', async () => {
    const { manifest, data } = backup('20261124T000000Z-aaaa0001', ['{"id":"a"}', '{"id":"b"}']);
    s3.on(GetObjectCommand, { Key: manifest.dataKey }).callsFake(() => ({ Body: body(data) }));
    const tampered = { ...manifest, sha256: 'f'.repeat(64) };
    const lines: string[] = [];
    const error = await (async () => {
      for await (const line of store().read(tampered)) lines.push(line);
    })().catch((e) => e);
    expect(lines).toEqual(['{"id":"a"}', '{"id":"b"}']);
    expect(error).toMatchObject({ code: 'ChecksumMismatch', retryable: false, resource: manifest.key });
    expect(error.message).toContain(manifest.key);
  });

  // moto cannot cut a download off mid-stream.
  it('refuses data that is not gzip, and a stream cut off mid-way as retryable', async () => {
    const { manifest, data } = backup('20261124T000000Z-aaaa0001', ['{"id":"a"}']);
    const cut = () =>
      new Readable({
        read() {
          this.push(data.subarray(0, 8));
          this.destroy(Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }));
        },
      });
    s3.on(GetObjectCommand, { Key: manifest.dataKey })
      .callsFakeOnce(() => ({ Body: body(Buffer.from('plain text')) }))
      .callsFakeOnce(() => ({ Body: body(cut()) }));
    const drain = async () => {
      for await (const _ of store().read(manifest)) {
        /* drain */
      }
    };
    await expect(drain()).rejects.toMatchObject({ code: 'CorruptBackup', retryable: false });
    await expect(drain()).rejects.toMatchObject({ code: 'Network', retryable: true });
  });
});
