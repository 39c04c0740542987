import { createHash, randomBytes } from 'node:crypto';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip, createGzip } from 'node:zlib';
import {
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
  type _Object,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { z } from 'zod';
import type { BackupManifest, BackupStore, BackupWrite } from '../ports.ts';
import { CloudError } from '../errors.ts';
import type { Logger } from '../../logging.ts';
import { awsCall, classifyAwsError } from './classify.ts';

export const MANIFEST_FILE = 'manifest.json';
export const DATA_FILE = 'data.ndjson.gz';

export interface S3BackupStoreOptions {
  s3: S3Client;
  bucket: string;
  /** Key prefix of every environment's backups, e.g. `backups/`. */
  prefix: string;
  /** Multipart part size; S3's minimum (5 MiB) unless a test wants more parts. */
  partSize?: number;
  /** Page size of ListObjectsV2 (S3's maximum is 1000). */
  pageSize?: number;
  logger: Logger;
  now?: () => Date;
}

const manifestSchema = z.object({
  key: z.string().min(1),
  dataKey: z.string().min(1),
  env: z.string().min(1),
  sourceStack: z.string(),
  createdAt: z.iso.datetime(),
  items: z.number().int().min(0),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  cursor: z.string(),
  bytes: z.number().int().min(0),
});

/**
 * A manifest counts item lines (BackupManifest.items), not the export's closing `end` line; only a
 * line that mentions it is parsed, so counting costs nothing on the other lines.
 */
function isItemLine(line: string): boolean {
  if (!line.includes('"end"')) return true;
  try {
    return (JSON.parse(line) as { kind?: unknown }).kind !== 'end';
  } catch {
    return true;
  }
}

/** Lines are batched into chunks of about this size before gzip, so 100k small lines are not 100k writes. */
const CHUNK_BYTES = 64 * 1024;

/**
 * Backups on S3: `<prefix><env>/<yyyymmddThhmmssZ>-<id>/data.ndjson.gz` and, written last,
 * `manifest.json` beside it. A backup exists only once its manifest does, is valid, and names a
 * data object of the size it records, so a crashed writer leaves garbage but never a "latest".
 * The manifest's `bytes` is the stored (gzipped) size of the data object.
 */
export class S3BackupStore implements BackupStore {
  private readonly s3: S3Client;
  private readonly bucket: string;
  private readonly log: Logger;
  private readonly now: () => Date;

  constructor(private readonly options: S3BackupStoreOptions) {
    this.s3 = options.s3;
    this.bucket = options.bucket;
    this.log = options.logger.child({ component: 's3-backups' });
    this.now = options.now ?? (() => new Date());
  }

  async list(env: string): Promise<BackupManifest[]> {
    const backups: BackupManifest[] = [];
    for (const folder of await this.folders(env)) {
      const manifest = await this.validManifest(folder);
      if (manifest) backups.push(manifest);
    }
    return backups;
  }

  async latest(env: string): Promise<BackupManifest | undefined> {
    for (const folder of await this.folders(env)) {
      const manifest = await this.validManifest(folder);
      if (manifest) return manifest;
    }
    return undefined;
  }

  async get(key: string): Promise<BackupManifest> {
    const manifest = await this.readManifest(key);
    const head = await awsCall('s3:HeadObject', this.url(manifest.dataKey), () =>
      this.s3.send(new HeadObjectCommand({ Bucket: this.bucket, Key: manifest.dataKey })),
    );
    if (head.ContentLength !== manifest.bytes) {
      throw new CloudError(
        `backup ${this.url(key)} is incomplete: data object has ${head.ContentLength} bytes, manifest says ${manifest.bytes}`,
        false,
        'InvalidBackup',
        key,
      );
    }
    return manifest;
  }

  async *read(manifest: BackupManifest, signal?: AbortSignal): AsyncIterable<string> {
    const where = this.url(manifest.dataKey);
    const object = await awsCall('s3:GetObject', where, () =>
      this.s3.send(new GetObjectCommand({ Bucket: this.bucket, Key: manifest.dataKey }), { abortSignal: signal }),
    );
    const body = object.Body as Readable | undefined;
    if (!body) throw new CloudError(`s3:GetObject on ${where} returned no body`, true, 'ServiceError', where);
    const gunzip = createGunzip();
    const hash = createHash('sha256');
    let items = 0;
    let rest = '';
    body.on('error', (err) => gunzip.destroy(err));
    body.pipe(gunzip);
    try {
      for await (const chunk of gunzip as AsyncIterable<Buffer>) {
        signal?.throwIfAborted();
        hash.update(chunk);
        const text = rest + chunk.toString('utf8');
        const lines = text.split('\n');
        rest = lines.pop() ?? '';
        for (const line of lines) {
          if (isItemLine(line)) items += 1;
          yield line;
        }
      }
    } catch (err) {
      if (signal?.aborted) throw err;
      if ((err as NodeJS.ErrnoException).code?.startsWith('Z_')) {
        throw new CloudError(
          `backup data ${where} is not valid gzip: ${(err as Error).message}`,
          false,
          'CorruptBackup',
          manifest.key,
          { cause: err },
        );
      }
      throw classifyAwsError(err, 's3:GetObject (stream)', where);
    } finally {
      body.destroy();
    }
    if (rest) {
      // The writer ends every line with a newline; a tail without one was cut off.
      throw new CloudError(`backup data ${where} ends in the middle of a line`, false, 'CorruptBackup', manifest.key);
    }
    const sha256 = hash.digest('hex');
    if (sha256 !== manifest.sha256) {
      throw new CloudError(
        `backup data ${where} does not match its manifest ${manifest.key}: SHA-256 ${sha256}, expected ${manifest.sha256}`,
        false,
        'ChecksumMismatch',
        manifest.key,
      );
    }
    if (items !== manifest.items) {
      throw new CloudError(
        `backup data ${where} has ${items} item lines, its manifest ${manifest.key} says ${manifest.items}`,
        false,
        'ChecksumMismatch',
        manifest.key,
      );
    }
  }

  async write(meta: BackupWrite, lines: AsyncIterable<string>): Promise<BackupManifest> {
    const createdAt = this.now();
    const folder = `${this.envPrefix(meta.env)}${createdAt.toISOString().replace(/[-:]|\.\d+/g, '')}-${randomBytes(4).toString('hex')}/`;
    const dataKey = `${folder}${DATA_FILE}`;
    const key = `${folder}${MANIFEST_FILE}`;
    const hash = createHash('sha256');
    let items = 0;
    let bytes = 0;
    // A failure of the caller's lines (e.g. the export stream) is theirs to classify, not S3's.
    let sourceError: unknown;

    async function* source(): AsyncGenerator<string> {
      try {
        yield* lines;
      } catch (err) {
        sourceError = err;
        throw err;
      }
    }
    async function* chunks(): AsyncGenerator<Buffer> {
      let pending: string[] = [];
      let size = 0;
      for await (const line of source()) {
        if (line.includes('\n'))
          throw new CloudError(
            `backup line ${items + 1} contains a newline; NDJSON lines must be single-line JSON`,
            false,
            'InvalidBackup',
            dataKey,
          );
        pending.push(line, '\n');
        size += line.length + 1;
        if (isItemLine(line)) items += 1;
        if (size >= CHUNK_BYTES) {
          const buf = Buffer.from(pending.join(''), 'utf8');
          hash.update(buf);
          yield buf;
          pending = [];
          size = 0;
        }
      }
      const buf = Buffer.from(pending.join(''), 'utf8');
      hash.update(buf);
      if (buf.byteLength) yield buf;
    }
    const counter = new Transform({
      transform(chunk: Buffer, _enc, done: TransformCallback) {
        bytes += chunk.byteLength;
        done(null, chunk);
      },
    });
    const upload = new Upload({
      client: this.s3,
      params: { Bucket: this.bucket, Key: dataKey, Body: counter, ContentType: 'application/gzip' },
      partSize: this.options.partSize ?? 5 * 1024 * 1024,
      queueSize: 2,
    });
    const uploaded = upload.done().catch((err) => {
      counter.destroy(err);
      throw err;
    });
    try {
      await Promise.all([pipeline(Readable.from(chunks()), createGzip(), counter), uploaded]);
    } catch (err) {
      await upload.abort().catch(() => undefined);
      if (err === sourceError || err instanceof CloudError) throw err;
      throw classifyAwsError(err, 's3:Upload', this.url(dataKey));
    }

    const manifest: BackupManifest = {
      key,
      dataKey,
      env: meta.env,
      sourceStack: meta.sourceStack,
      createdAt: createdAt.toISOString(),
      items,
      sha256: hash.digest('hex'),
      cursor: meta.cursor,
      bytes,
    };
    await awsCall('s3:PutObject', this.url(key), () =>
      this.s3.send(
        new PutObjectCommand({
          Bucket: this.bucket,
          Key: key,
          Body: JSON.stringify(manifest, null, 2),
          ContentType: 'application/json',
        }),
      ),
    );
    this.log.info({ env: meta.env, key, items, bytes, sourceStack: meta.sourceStack }, 'backup written');
    return manifest;
  }

  async prune(env: string, keep: number): Promise<string[]> {
    if (!Number.isInteger(keep) || keep < 1) {
      throw new CloudError(
        `prune needs keep >= 1 (got ${keep}): the newest backup is never deleted`,
        false,
        'Validation',
        env,
      );
    }
    const folders = await this.folders(env);
    let kept = 0;
    let cutoff: number | undefined;
    for (const [i, folder] of folders.entries()) {
      if (await this.validManifest(folder)) kept += 1;
      if (kept === keep) {
        cutoff = i + 1;
        break;
      }
    }
    // Only folders older than the oldest kept backup go, half-written ones included: a newer
    // half-written folder may be a backup still being written.
    const doomed = cutoff === undefined ? [] : folders.slice(cutoff).flatMap((f) => f.objects.map((o) => o.Key!));
    for (let i = 0; i < doomed.length; i += 1000) {
      const batch = doomed.slice(i, i + 1000);
      const out = await awsCall('s3:DeleteObjects', this.url(this.envPrefix(env)), () =>
        this.s3.send(
          new DeleteObjectsCommand({
            Bucket: this.bucket,
            Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true },
          }),
        ),
      );
      if (out.Errors?.length) {
        const first = out.Errors[0]!;
        throw new CloudError(
          `s3:DeleteObjects failed for ${out.Errors.length} keys, first ${first.Key}: ${first.Message} (${first.Code})`,
          true,
          'ServiceError',
          first.Key,
        );
      }
    }
    if (doomed.length) this.log.info({ env, keep, deleted: doomed.length }, 'old backups pruned');
    return doomed;
  }

  private envPrefix(env: string): string {
    return `${this.options.prefix}${env}/`;
  }

  private url(key: string): string {
    return `s3://${this.bucket}/${key}`;
  }

  /** Backup folders of an environment, newest first (folder names start with a sortable UTC time). */
  private async folders(env: string): Promise<Array<{ prefix: string; objects: _Object[] }>> {
    const prefix = this.envPrefix(env);
    const byFolder = new Map<string, _Object[]>();
    let token: string | undefined;
    do {
      const page = await awsCall('s3:ListObjectsV2', this.url(prefix), () =>
        this.s3.send(
          new ListObjectsV2Command({
            Bucket: this.bucket,
            Prefix: prefix,
            ContinuationToken: token,
            MaxKeys: this.options.pageSize,
          }),
        ),
      );
      for (const object of page.Contents ?? []) {
        const rest = object.Key?.slice(prefix.length) ?? '';
        const slash = rest.indexOf('/');
        if (slash <= 0) continue;
        const folder = prefix + rest.slice(0, slash + 1);
        byFolder.set(folder, [...(byFolder.get(folder) ?? []), object]);
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return [...byFolder.entries()]
      .sort(([a], [b]) => (a < b ? 1 : a > b ? -1 : 0))
      .map(([p, objects]) => ({ prefix: p, objects }));
  }

  /** The folder's manifest when the backup is complete: manifest valid and data object of the recorded size. */
  private async validManifest(folder: { prefix: string; objects: _Object[] }): Promise<BackupManifest | undefined> {
    const manifestObject = folder.objects.find((o) => o.Key === `${folder.prefix}${MANIFEST_FILE}`);
    const dataObject = folder.objects.find((o) => o.Key === `${folder.prefix}${DATA_FILE}`);
    if (!manifestObject || !dataObject) {
      this.log.debug({ folder: folder.prefix }, 'skipping incomplete backup');
      return undefined;
    }
    let manifest: BackupManifest;
    try {
      manifest = await this.readManifest(manifestObject.Key!);
    } catch (err) {
      if (err instanceof CloudError && err.code === 'InvalidBackup') {
        this.log.warn({ folder: folder.prefix, err: err.message }, 'skipping backup with an invalid manifest');
        return undefined;
      }
      throw err;
    }
    if (manifest.dataKey !== dataObject.Key || manifest.bytes !== dataObject.Size) {
      this.log.warn(
        { folder: folder.prefix, dataKey: manifest.dataKey, bytes: manifest.bytes, size: dataObject.Size },
        'skipping backup whose manifest does not match its data object',
      );
      return undefined;
    }
    return manifest;
  }

  private async readManifest(key: string): Promise<BackupManifest> {
    const object = await awsCall('s3:GetObject', this.url(key), () =>
      this.s3.send(new GetObjectCommand({ Bucket: this.bucket, Key: key })),
    );
    const text = (await object.Body?.transformToString('utf8')) ?? '';
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch (err) {
      throw new CloudError(
        `backup manifest ${this.url(key)} is not JSON: ${(err as Error).message}`,
        false,
        'InvalidBackup',
        key,
      );
    }
    const parsed = manifestSchema.safeParse(raw);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      throw new CloudError(
        `backup manifest ${this.url(key)}: field '${issue.path.join('.')}': ${issue.message}`,
        false,
        'InvalidBackup',
        key,
      );
    }
    if (parsed.data.key !== key) {
      throw new CloudError(
        `backup manifest ${this.url(key)} names itself ${parsed.data.key}`,
        false,
        'InvalidBackup',
        key,
      );
    }
    return parsed.data;
  }
}
