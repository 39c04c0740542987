import { describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { repoRoot } from '../../src/config/environment.ts';
import { toolPath } from '../../src/tools.ts';
import { readTemplate } from './cfn-yaml.ts';

interface CheckovReport {
  check_type: string;
  summary: { passed: number; failed: number; skipped: number; parsing_errors: number };
  results: {
    failed_checks: Array<{ check_id: string; resource: string; file_path: string }>;
    skipped_checks: Array<{ check_id: string; resource: string; check_result: { suppress_comment?: string } }>;
  };
}

/** Checkov over infra/, offline (no policy download), as JSON. */
async function scanInfra(): Promise<CheckovReport> {
  const args = [
    '-d',
    resolve(repoRoot, 'infra'),
    '--framework',
    'cloudformation',
    '--skip-download',
    '--compact',
    '-o',
    'json',
  ];
  // Checkov exits 1 when a check fails; the report on stdout says which.
  const stdout = await promisify(execFile)(toolPath('checkov'), args, {
    timeout: 120_000,
    maxBuffer: 32 * 1024 * 1024,
    env: { ...process.env, BC_SKIP_MAPPING: 'TRUE' },
  }).then(
    (r) => r.stdout,
    (err: { stdout?: string; message: string }) => err.stdout || Promise.reject(err),
  );
  const parsed = JSON.parse(stdout) as CheckovReport | CheckovReport[];
  const reports = [parsed].flat();
  expect(reports.map((r) => r.check_type)).toEqual(['cloudformation']);
  return reports[0]!;
}

describe('Checkov over infra/', () => {
  it('fails no check; every suppression is one of the known few and gives its reason', async () => {
    const report = await scanInfra();
    expect(report.results.failed_checks.map((c) => `${c.check_id} ${c.resource} (${c.file_path})`)).toEqual([]);
    expect(report.summary.parsing_errors).toBe(0);
    expect(report.summary.passed).toBeGreaterThan(90);
    const skipped = report.results.skipped_checks.map((c) => `${c.check_id} ${c.resource}`).sort();
    expect(skipped).toEqual([
      'CKV_AWS_103 AWS::ElasticLoadBalancingV2::Listener.PublicListener',
      'CKV_AWS_18 AWS::S3::Bucket.AccessLogBucket',
      'CKV_AWS_2 AWS::ElasticLoadBalancingV2::Listener.PublicListener',
      'CKV_AWS_91 AWS::ElasticLoadBalancingV2::LoadBalancer.RiakLoadBalancer',
    ]);
    for (const check of report.results.skipped_checks)
      expect(check.check_result.suppress_comment?.length ?? 0, check.check_id).toBeGreaterThan(30);
  }, 150_000);

  it('the public listener the TLS suppressions speak of is TLS 1.2+ whenever a certificate is given', async () => {
    const listener = (await readTemplate('app-stack.yaml')).Resources.PublicListener!.Properties;
    expect(listener.Protocol).toEqual({ 'Fn::If': ['UseTls', 'TLS', 'TCP'] });
    expect(listener.SslPolicy).toEqual({
      'Fn::If': ['UseTls', 'ELBSecurityPolicy-TLS13-1-2-2021-06', { Ref: 'AWS::NoValue' }],
    });
  });

  it("the load balancers log to the access-log bucket, which receives the backup bucket's access logs too", async () => {
    const app = await readTemplate('app-stack.yaml');
    const attributes = app.Resources.PublicLoadBalancer!.Properties.LoadBalancerAttributes as Array<{
      Key: string;
      Value: unknown;
    }>;
    expect(attributes).toEqual(
      expect.arrayContaining([
        { Key: 'access_logs.s3.enabled', Value: 'true' },
        { Key: 'access_logs.s3.bucket', Value: { Ref: 'AccessLogBucket' } },
      ]),
    );
    const backups = await readTemplate('backups.yaml');
    expect(backups.Resources.Bucket!.Properties.LoggingConfiguration.DestinationBucketName).toEqual({
      Ref: 'AccessLogBucket',
    });
    const policy = JSON.stringify(backups.Resources.AccessLogBucketPolicy!.Properties.PolicyDocument);
    expect(policy).toContain('logging.s3.amazonaws.com');
    expect(policy).toContain('delivery.logs.amazonaws.com');
    expect(
      backups.Resources.AccessLogBucket!.Properties.BucketEncryption.ServerSideEncryptionConfiguration[0]
        .ServerSideEncryptionByDefault.SSEAlgorithm,
    ).toBe('AES256');
  });
});
