import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { CreateHostedZoneCommand } from '@aws-sdk/client-route-53';
import {
  autoScalingClient,
  cloudFormationClient,
  cloudWatchLogsClient,
  ec2Client,
  route53Client,
  s3Client,
  ssmClient,
  type AwsClientConfig,
} from '../../src/cloud/aws/clients.ts';
import { motoCredentials, motoRegion, type Moto } from '../support/moto.ts';

export function motoConfig(moto: Moto): AwsClientConfig {
  return { region: motoRegion, endpoint: moto.endpoint, credentials: motoCredentials, maxAttempts: 1 };
}

export function motoClients(moto: Moto) {
  const config = motoConfig(moto);
  return {
    s3: s3Client(config),
    route53: route53Client(config),
    cloudFormation: cloudFormationClient(config),
    autoScaling: autoScalingClient(config),
    ec2: ec2Client(config),
    ssm: ssmClient(config),
    logs: cloudWatchLogsClient(config),
  };
}

export async function createBucket(moto: Moto, bucket: string): Promise<void> {
  await motoClients(moto).s3.send(new CreateBucketCommand({ Bucket: bucket }));
}

export async function createZone(moto: Moto, name: string): Promise<string> {
  const out = await motoClients(moto).route53.send(
    new CreateHostedZoneCommand({ Name: name, CallerReference: `${name}-${Date.now()}` }),
  );
  return out.HostedZone!.Id!;
}
