import { randomBytes } from 'node:crypto';
import { CreateBucketCommand, type S3Client } from '@aws-sdk/client-s3';
import { CreateHostedZoneCommand, ListHostedZonesByNameCommand, type Route53Client } from '@aws-sdk/client-route-53';
import { resolveSecret, type Environment } from '../config/environment.ts';
import type { BackupManifest, Ports } from '../cloud/ports.ts';
import { createAdminClient, type StackAdmin } from '../navcloud/admin-client.ts';
import type { ExportItemLine } from '../navcloud/protocol.ts';
import { encodeCursor } from '../navcloud/cursor.ts';
import type { Logger } from '../logging.ts';
import { stackName } from '../switch/stack-name.ts';
import { recordDomain } from '../cloud/factory.ts';

/** The S3 bucket of an environment's backups, in moto. Creating one that exists is fine. */
export async function ensureBucket(s3: S3Client, bucket: string): Promise<void> {
  try {
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  } catch (err) {
    if (!['BucketAlreadyOwnedByYou', 'BucketAlreadyExists'].includes((err as Error).name)) throw err;
  }
}

/** The hosted zone holding the environment's record (its domain), created if missing; returns its id. */
export async function ensureHostedZone(
  route53: Route53Client,
  recordName: string,
): Promise<{ domain: string; id: string }> {
  const domain = recordDomain(recordName);
  const found = await route53.send(new ListHostedZonesByNameCommand({ DNSName: domain, MaxItems: 1 }));
  const existing = found.HostedZones?.find((z) => z.Name?.replace(/\.$/, '').toLowerCase() === domain);
  const zone =
    existing ??
    (
      await route53.send(
        new CreateHostedZoneCommand({
          Name: domain,
          CallerReference: `switchyard-${domain}-${Date.now()}`,
        }),
      )
    ).HostedZone!;
  return { domain, id: zone.Id!.replace(/^\/hostedzone\//, '') };
}

const IMPORT_BATCH = 2_000;

export interface SeedResult {
  stack: string;
  items: number;
  backupKey: string;
}

/**
 * Gives a fresh local environment what a switch needs: a live stack with data that DNS points
 * at, and a backup of it. The stack is provisioned directly through the ports rather than by a
 * switch: a switch moves clients from one live stack to another (catch-up, fence, drain), and
 * there is no live stack yet to move them from. A live stack without a backup only gets the
 * backup. Returns undefined when the record already points at a stack and a backup exists.
 */
export async function seedEnvironment(
  env: Environment,
  ports: Ports,
  items: number,
  log: Logger,
): Promise<SeedResult | undefined> {
  const live = await ports.dns.current(env.recordName);
  const backup = await ports.backups.latest(env.name);
  if (live && backup) return undefined;
  const jwtSecret = resolveSecret(env.jwtSecret);
  if (live) {
    // Clients are served already: only the backup is missing, and it is taken from what they use.
    const outputs = (await ports.stacks.describe(live.stack))?.outputs;
    if (!outputs)
      throw new Error(
        `${env.recordName} points at ${live.stack}, which is not a running stack, and there is no backup to restore from`,
      );
    const manifest = await backUp(
      env,
      ports,
      live.stack,
      createAdminClient({ adminUrl: outputs.adminUrl, jwtSecret }),
      outputs.adminUrl,
    );
    return { stack: live.stack, items: manifest.items, backupKey: manifest.key };
  }

  const name = stackName(env.name, 'blue', randomBytes(4).toString('hex'));
  log.info({ stack: name, items }, 'seeding the environment: a first live stack, data, a backup and the DNS record');
  await ports.stacks.create({
    name,
    env: env.name,
    colour: 'blue',
    workflowId: 'seed',
    template: env.template,
    parameters: env.parameters,
  });
  const ready = await ports.stacks.waitUntilReady(name);
  const outputs = ready.outputs!;

  const admin = createAdminClient({ adminUrl: outputs.adminUrl, jwtSecret });
  await importSeedItems(admin, items);
  const manifest = await backUp(env, ports, name, admin, outputs.adminUrl);

  const changeId = await ports.dns.switch({
    recordName: env.recordName,
    ttl: env.ttl,
    expected: undefined,
    stack: name,
    target: outputs.dnsTarget,
  });
  await ports.dns.waitInSync(changeId);
  log.info({ stack: name, backup: manifest.key, items: manifest.items }, 'environment seeded');
  return { stack: name, items: manifest.items, backupKey: manifest.key };
}

/** Exports the stack into a new backup; the cursor is read first, so the export holds at least everything up to it. */
async function backUp(
  env: Environment,
  ports: Ports,
  stack: string,
  admin: StackAdmin,
  adminUrl: string,
): Promise<BackupManifest> {
  const { cursor } = await admin.stats(adminUrl);
  async function* exported(): AsyncIterable<string> {
    for await (const line of admin.exportSince(undefined)) yield JSON.stringify(line);
  }
  return ports.backups.write({ env: env.name, sourceStack: stack, cursor }, exported());
}

/**
 * Trips, routes and places of a few users, loaded through the admin import as a restore would:
 * fast enough for the benchmark's 100,000 items. Sequence numbers (cursors) start at 1.
 */
async function importSeedItems(admin: StackAdmin, count: number): Promise<void> {
  const types = ['trip', 'route', 'place'] as const;
  const users = Math.max(1, Math.min(50, Math.ceil(count / 20)));
  const updatedAt = new Date().toISOString();
  for (let from = 0; from < count; from += IMPORT_BATCH) {
    const lines: ExportItemLine[] = [];
    for (let i = from; i < Math.min(count, from + IMPORT_BATCH); i++) {
      lines.push({
        kind: 'item',
        id: `seed-${i}`,
        owner: `seed-user-${i % users}`,
        type: types[i % types.length]!,
        rev: `1-${randomBytes(6).toString('hex')}`,
        deleted: false,
        data: { name: `seed item ${i}` },
        shares: [],
        cursor: encodeCursor(i + 1),
        updatedAt,
      });
    }
    await admin.importLines(lines);
  }
}
