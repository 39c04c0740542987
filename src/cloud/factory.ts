import { resolve } from 'node:path';
import { ConfigError, resolveSecret, type Environment } from '../config/environment.ts';
import type { Ports } from './ports.ts';
import { route53Client, s3Client, cloudFormationClient, type AwsClientConfig } from './aws/clients.ts';
import { AwsStackProvisioner } from './aws/stack-provisioner.ts';
import { S3BackupStore } from './aws/backup-store.ts';
import { Route53DnsRouter } from './aws/dns-router.ts';
import { LocalStackProvisioner } from './local/stack-provisioner.ts';
import { responderAnswerCheck } from './local/answer-check.ts';
import { readLocalState, recordDomain, type LocalState } from '../local/state.ts';

/** Credentials moto accepts; the SDK refuses to sign without some. */
export const LOCAL_CREDENTIALS = { accessKeyId: 'testing', secretAccessKey: 'testing' };

/**
 * The adapters of one environment. `aws`: CloudFormation, S3 and Route53. `local`: stacks are
 * local processes, while backups and DNS are the same S3 and Route53 adapters talking to the
 * local environment's moto (`state`, by default the file `switchyard up` wrote) and answers
 * are checked against its DNS responder.
 */
export function createPorts(env: Environment, state?: LocalState): Ports {
  if (env.profile === 'aws') {
    const config: AwsClientConfig = { region: env.region };
    return {
      stacks: new AwsStackProvisioner({
        cloudFormation: cloudFormationClient(config), s3: s3Client(config), region: env.region, templateBucket: env.backups.bucket,
        roleArn: env.stackRoleArn,
      }),
      backups: new S3BackupStore({ s3: s3Client(config), bucket: env.backups.bucket, prefix: env.backups.prefix }),
      dns: new Route53DnsRouter({ route53: route53Client(config), hostedZoneId: env.hostedZoneId }),
    };
  }
  const local = state ?? readLocalState();
  const config: AwsClientConfig = { region: local.region, endpoint: local.motoEndpoint, credentials: LOCAL_CREDENTIALS };
  return {
    stacks: new LocalStackProvisioner({
      stacksDir: resolve(local.dataDir, 'stacks'), jwtSecret: resolveSecret(env.jwtSecret), bus: local.bus, store: local.store,
    }),
    backups: new S3BackupStore({ s3: s3Client(config), bucket: env.backups.bucket, prefix: env.backups.prefix }),
    dns: new Route53DnsRouter({
      route53: route53Client(config),
      hostedZoneId: localHostedZone(env, local),
      answerCheck: responderAnswerCheck(local.dnsServer),
      // moto applies a change at once: poll it like a local service, not like AWS.
      poll: { initialMs: 100, maxMs: 1_000, timeoutMs: 60_000 },
      minIntervalMs: 0,
    }),
  };
}

/** `auto` is the zone `switchyard up` created for the record's domain; anything else is a zone id. */
export function localHostedZone(env: Environment, state: LocalState): string {
  if (env.hostedZoneId !== 'auto') return env.hostedZoneId;
  const domain = recordDomain(env.recordName);
  const id = state.hostedZones[domain];
  if (!id) {
    throw new ConfigError(`environment '${env.name}': hostedZoneId is auto but the local environment has no hosted zone for ${domain}: restart it with 'switchyard up'`);
  }
  return id;
}
