import { CloudFormationClient } from '@aws-sdk/client-cloudformation';
import { S3Client } from '@aws-sdk/client-s3';
import { Route53Client } from '@aws-sdk/client-route-53';
import { SNSClient } from '@aws-sdk/client-sns';

export interface AwsClientConfig {
  region: string;
  /** An emulator (moto) or VPC endpoint; unset: the public AWS endpoints. */
  endpoint?: string;
  /** Static credentials (tests, the local profile); unset: the SDK's default provider chain. */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /** SDK attempts per call for throttling and transient faults before our own classification. */
  maxAttempts?: number;
}

function common(config: AwsClientConfig) {
  return {
    region: config.region,
    maxAttempts: config.maxAttempts ?? 4,
    ...(config.endpoint ? { endpoint: config.endpoint } : {}),
    ...(config.credentials ? { credentials: config.credentials } : {}),
  };
}

export function cloudFormationClient(config: AwsClientConfig): CloudFormationClient {
  return new CloudFormationClient(common(config));
}

/** Path-style addressing when an endpoint is given: bucket host names do not resolve on loopback. */
export function s3Client(config: AwsClientConfig): S3Client {
  return new S3Client({ ...common(config), forcePathStyle: Boolean(config.endpoint) });
}

export function route53Client(config: AwsClientConfig): Route53Client {
  return new Route53Client(common(config));
}

export function snsClient(config: AwsClientConfig): SNSClient {
  return new SNSClient(common(config));
}
