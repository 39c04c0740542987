import { resolve } from 'node:path';
import { ConfigError, resolveSecret, type Environment } from '../config/environment.ts';
import type { Logger } from '../logging.ts';
import type { Ports } from './ports.ts';
import {
  autoScalingClient,
  cloudFormationClient,
  ec2Client,
  route53Client,
  s3Client,
  type AwsClientConfig,
} from './aws/clients.ts';
import { AwsStackProvisioner } from './aws/stack-provisioner.ts';
import { S3BackupStore } from './aws/backup-store.ts';
import { Route53DnsRouter } from './aws/dns-router.ts';
import { LocalStackProvisioner } from './local/stack-provisioner.ts';
import type { LocalStore } from './local/stack-spec.ts';
import { responderAnswerCheck } from './local/answer-check.ts';

/** Credentials moto accepts; the SDK refuses to sign without some. */
export const LOCAL_CREDENTIALS = { accessKeyId: 'testing', secretAccessKey: 'testing' };

/**
 * What the local profile's adapters need of the running local environment (`switchyard up`
 * writes it to its state file, src/local/state.ts; whoever calls createPorts reads it).
 */
export interface LocalCloud {
  dataDir: string;
  region: string;
  motoEndpoint: string;
  /** The DNS responder, `host:port`. */
  dnsServer: string;
  /** SYNC_BUS of every stack's nodes. */
  bus: string;
  /** Hosted zone id per domain, for environments whose hostedZoneId is `auto`. */
  hostedZones: Record<string, string>;
  /** Where every stack's nodes keep their data (default sqlite). */
  store?: LocalStore;
  /** Folder of the nodes' acknowledgment journals, one subfolder per stack; absent: nodes keep none. */
  ackJournals?: string;
}

/**
 * The adapters of one environment. `aws`: CloudFormation, S3 and Route53. `local`: stacks are
 * local processes, while backups and DNS are the same S3 and Route53 adapters talking to the
 * local environment's moto (`readLocalCloud`: what the local environment left, or how to read it;
 * only a local profile reads it) and answers are checked against its DNS responder.
 */
export function createPorts(env: Environment, logger: Logger, readLocalCloud?: LocalCloud | (() => LocalCloud)): Ports {
  if (env.profile === 'aws') {
    const config: AwsClientConfig = { region: env.region };
    return {
      stacks: new AwsStackProvisioner({
        cloudFormation: cloudFormationClient(config),
        autoScaling: autoScalingClient(config),
        ec2: ec2Client(config),
        s3: s3Client(config),
        region: env.region,
        templateBucket: env.backups.bucket,
        roleArn: env.stackRoleArn,
        logger,
      }),
      backups: new S3BackupStore({
        s3: s3Client(config),
        bucket: env.backups.bucket,
        prefix: env.backups.prefix,
        logger,
      }),
      dns: new Route53DnsRouter({ route53: route53Client(config), hostedZoneId: env.hostedZoneId, logger }),
    };
  }
  const cloud = typeof readLocalCloud === 'function' ? readLocalCloud() : readLocalCloud;
  if (!cloud) {
    throw new ConfigError(
      `environment '${env.name}' uses the local profile but no local environment was given: start it with 'switchyard up'`,
    );
  }
  const config: AwsClientConfig = {
    region: cloud.region,
    endpoint: cloud.motoEndpoint,
    credentials: LOCAL_CREDENTIALS,
  };
  return {
    stacks: localStackProvisioner(env, cloud, logger),
    backups: new S3BackupStore({
      s3: s3Client(config),
      bucket: env.backups.bucket,
      prefix: env.backups.prefix,
      logger,
    }),
    dns: new Route53DnsRouter({
      route53: route53Client(config),
      logger,
      hostedZoneId: localHostedZone(env, cloud),
      answerCheck: responderAnswerCheck(cloud.dnsServer),
      // moto applies a change at once: poll it like a local service, not like AWS.
      poll: { initialMs: 100, maxMs: 1_000, timeoutMs: 60_000 },
      minIntervalMs: 0,
    }),
  };
}

/** The local profile's stacks: processes under the local environment's data directory. */
export function localStackProvisioner(env: Environment, cloud: LocalCloud, logger: Logger): LocalStackProvisioner {
  return new LocalStackProvisioner({
    stacksDir: resolve(cloud.dataDir, 'stacks'),
    jwtSecret: resolveSecret(env.jwtSecret),
    bus: cloud.bus,
    store: cloud.store,
    ackJournals: cloud.ackJournals,
    logger,
  });
}

/** `auto` is the zone `switchyard up` created for the record's domain; anything else is a zone id. */
export function localHostedZone(env: Environment, cloud: Pick<LocalCloud, 'hostedZones'>): string {
  if (env.hostedZoneId !== 'auto') return env.hostedZoneId;
  const domain = recordDomain(env.recordName);
  const id = cloud.hostedZones[domain];
  if (!id) {
    throw new ConfigError(
      `environment '${env.name}': hostedZoneId is auto but the local environment has no hosted zone for ${domain}: restart it with 'switchyard up'`,
    );
  }
  return id;
}

/** The domain a record lives in: its name without the first label. */
export function recordDomain(recordName: string): string {
  return recordName.replace(/\.$/, '').split('.').slice(1).join('.').toLowerCase();
}
