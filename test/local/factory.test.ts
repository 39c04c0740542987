import { describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, loadEnvironment, parseEnvironment } from '../../src/config/environment.ts';
import { createPorts, localHostedZone } from '../../src/cloud/factory.ts';
import { AwsStackProvisioner } from '../../src/cloud/aws/stack-provisioner.ts';
import { S3BackupStore } from '../../src/cloud/aws/backup-store.ts';
import { Route53DnsRouter } from '../../src/cloud/aws/dns-router.ts';
import { LocalStackProvisioner } from '../../src/cloud/local/stack-provisioner.ts';
import { readLocalState, type LocalState } from '../../src/local/state.ts';
import { testLogger } from '../support/logger.ts';
import { tempDir } from '../support/temp-dir.ts';

const state: LocalState = {
  dataDir: '/tmp/switchyard-factory-test',
  region: 'us-east-1',
  motoEndpoint: 'http://127.0.0.1:1',
  temporalAddress: '127.0.0.1:2',
  dnsServer: '127.0.0.1:3',
  bus: 'memory',
  store: 'sqlite',
  hostedZones: { 'dev.navcloud.test': 'ZLOCAL1' },
  processes: { supervisor: 1 },
  startedAt: '',
};

describe('port factory', () => {
  it('builds local stacks with the S3 and Route53 adapters for the local profile, resolving the auto zone', async () => {
    const env = await loadEnvironment('dev');
    const ports = createPorts(env, testLogger, state);
    expect(ports.stacks).toBeInstanceOf(LocalStackProvisioner);
    expect(ports.backups).toBeInstanceOf(S3BackupStore);
    expect(ports.dns).toBeInstanceOf(Route53DnsRouter);
    expect(localHostedZone(env, state)).toBe('ZLOCAL1');
    expect(localHostedZone({ ...env, hostedZoneId: 'ZEXPLICIT' }, state)).toBe('ZEXPLICIT');
  });

  it('says which domain has no zone when hostedZoneId is auto and up did not create one', async () => {
    const env = await loadEnvironment('dev');
    const other = { ...env, recordName: 'sync.qa.navcloud.test' };
    expect(() => createPorts(other, testLogger, state)).toThrow(ConfigError);
    expect(() => createPorts(other, testLogger, state)).toThrow(/qa\.navcloud\.test/);
  });

  it('tells the user to run up when the local environment is not running', () => {
    const missing = join(tempDir('switchyard-state-').path, 'local.json');
    expect(() => readLocalState(missing)).toThrow(/switchyard up/);
    writeFileSync(missing, JSON.stringify({ dataDir: 1 }));
    expect(() => readLocalState(missing)).toThrow(ConfigError);
  });

  it('reads the local environment only for the local profile, and refuses to build local ports without one', async () => {
    const env = await loadEnvironment('dev');
    expect(() => createPorts(env, testLogger)).toThrow(/switchyard up/);
    let reads = 0;
    const ports = createPorts(env, testLogger, () => {
      reads += 1;
      return state;
    });
    expect(ports.stacks).toBeInstanceOf(LocalStackProvisioner);
    expect(reads).toBe(1);
  });

  it('builds CloudFormation, S3 and Route53 adapters for the aws profile', () => {
    const env = parseEnvironment(
      'prod.yaml',
      `
name: prod
profile: aws
region: eu-west-1
hostedZoneId: Z123
recordName: sync.navcloud.example
ttl: 60
template: app-stack.yaml
backups: { bucket: navcloud-prod-backups }
smoke: { heartbeatMs: 25000 }
verifySeconds: 300
drainSeconds: 900
jwtSecret: env:PROD_SECRET
`,
    );
    const ports = createPorts(env, testLogger, () => {
      throw new Error('an aws environment must not read the local one');
    });
    expect(ports.stacks).toBeInstanceOf(AwsStackProvisioner);
    expect(ports.backups).toBeInstanceOf(S3BackupStore);
    expect(ports.dns).toBeInstanceOf(Route53DnsRouter);
  });
});
