import { CloudError } from '../errors.ts';

/**
 * The one place an AWS SDK failure becomes a CloudError. Activities only look at `retryable`:
 * a wrong answer here either burns a switch on a transient fault or retries a hopeless call
 * until the activity times out, so every kind is listed explicitly and unit-tested.
 */

const THROTTLING = new Set([
  'Throttling',
  'ThrottlingException',
  'ThrottledException',
  'TooManyRequestsException',
  'RequestLimitExceeded',
  'RequestThrottled',
  'RequestThrottledException',
  'SlowDown',
  'BandwidthLimitExceeded',
  'EC2ThrottledException',
  'ProvisionedThroughputExceededException',
  'TransactionInProgressException',
  // Route53: another change to the same zone is still being accepted.
  'PriorRequestNotComplete',
]);
const TIMEOUT = new Set(['TimeoutError', 'RequestTimeout', 'RequestTimeoutException']);
const NETWORK_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ECONNABORTED',
  'ERR_STREAM_PREMATURE_CLOSE',
  'UND_ERR_SOCKET',
]);
const SERVER = new Set([
  'InternalError',
  'InternalFailure',
  'InternalFailureException',
  'ServiceUnavailable',
  'ServiceUnavailableException',
]);
const ACCESS_DENIED = new Set([
  'AccessDenied',
  'AccessDeniedException',
  'UnauthorizedOperation',
  'InvalidClientTokenId',
  'SignatureDoesNotMatch',
  'InvalidAccessKeyId',
  'AuthFailure',
  'UnrecognizedClientException',
  'NotAuthorized',
  'MissingAuthenticationToken',
  'CredentialsProviderError',
  'ExpiredToken',
  'ExpiredTokenException',
]);
const NOT_FOUND = new Set([
  'NotFound',
  'NoSuchKey',
  'NoSuchBucket',
  'NoSuchUpload',
  'NoSuchVersion',
  'NoSuchHostedZone',
  'NoSuchChange',
  'StackNotFoundException',
  'StackSetNotFoundException',
  'ResourceNotFoundException',
]);
const VALIDATION = new Set([
  'ValidationError',
  'ValidationException',
  'InvalidParameterValue',
  'InvalidParameterCombination',
  'InvalidParameterException',
  'MissingParameter',
  'InvalidInput',
  'InvalidChangeBatch',
  'InvalidArgument',
  'InvalidRequest',
  'MalformedXML',
  'InvalidBucketName',
  'InvalidDomainName',
  'InsufficientCapabilitiesException',
  'TokenAlreadyExistsException',
  'InvalidObjectState',
  'EntityTooLarge',
  'EntityTooSmall',
  'InvalidPart',
  'PreconditionFailed',
]);
const ALREADY_EXISTS = new Set(['AlreadyExistsException', 'BucketAlreadyExists', 'HostedZoneAlreadyExists']);
// CloudFormation's stack-count quota: waiting does not raise it (the SDK wrongly retries it as throttling).
const LIMIT = new Set(['LimitExceededException', 'TooManyBuckets']);

interface AwsLikeError {
  name?: string;
  Code?: string;
  code?: string;
  message?: string;
  $fault?: 'client' | 'server';
  $metadata?: { httpStatusCode?: number; requestId?: string };
  $retryable?: { throttling?: boolean };
}

/** The AWS error code (S3's Code, everyone else's name), or a Node system error code. */
export function awsErrorName(err: unknown): string {
  const e = (err ?? {}) as AwsLikeError;
  if (e.Code && typeof e.Code === 'string') return e.Code;
  if (e.name && e.name !== 'Error' && e.name !== 'ServiceException') return e.name;
  if (typeof e.code === 'string') return e.code;
  return e.name ?? 'Error';
}

function kindOf(err: unknown): { kind: string; retryable: boolean } {
  const e = (err ?? {}) as AwsLikeError;
  const name = awsErrorName(err);
  const status = e.$metadata?.httpStatusCode;
  const message = e.message ?? '';
  const nodeCode = typeof e.code === 'string' ? e.code : undefined;

  if (name === 'AbortError') return { kind: 'Aborted', retryable: false };
  if (THROTTLING.has(name) || e.$retryable?.throttling || status === 429)
    return { kind: 'Throttling', retryable: true };
  if (TIMEOUT.has(name) || nodeCode === 'ETIMEDOUT') return { kind: 'Timeout', retryable: true };
  if (NETWORK_CODES.has(name) || (nodeCode && NETWORK_CODES.has(nodeCode)) || /socket hang up/i.test(message)) {
    return { kind: 'Network', retryable: true };
  }
  if (SERVER.has(name) || (status !== undefined && status >= 500) || e.$fault === 'server') {
    return { kind: 'ServiceError', retryable: true };
  }
  if (ACCESS_DENIED.has(name) || status === 403) return { kind: 'AccessDenied', retryable: false };
  if (ALREADY_EXISTS.has(name)) return { kind: 'AlreadyExists', retryable: false };
  if (LIMIT.has(name)) return { kind: 'LimitExceeded', retryable: false };
  // CloudFormation answers a missing stack with a plain ValidationError.
  if (NOT_FOUND.has(name) || status === 404 || (name === 'ValidationError' && /does not exist/i.test(message))) {
    return { kind: 'NotFound', retryable: false };
  }
  if (VALIDATION.has(name) || (status !== undefined && status >= 400)) return { kind: 'Validation', retryable: false };
  // No HTTP answer and no known transport code: a programming error, retrying will not help.
  return { kind: 'Unexpected', retryable: false };
}

/**
 * `operation` is the API call (e.g. s3:GetObject), `resource` the thing it was about (bucket/key,
 * stack name, record name): both end up in the message an operator reads in the switch report.
 */
export function classifyAwsError(err: unknown, operation: string, resource?: string): CloudError {
  if (err instanceof CloudError) return err;
  const { kind, retryable } = kindOf(err);
  const e = (err ?? {}) as AwsLikeError;
  const name = awsErrorName(err);
  const awsMessage = e.message || name;
  const status = e.$metadata?.httpStatusCode;
  const where = resource ? ` on ${resource}` : '';
  const detail = [name, status && `HTTP ${status}`, e.$metadata?.requestId && `request ${e.$metadata.requestId}`]
    .filter(Boolean)
    .join(', ');
  return new CloudError(`${operation}${where} failed: ${awsMessage} (${detail})`, retryable, kind, resource, {
    cause: err,
  });
}

/** Runs one AWS call and classifies whatever it throws. */
export async function awsCall<T>(operation: string, resource: string | undefined, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    throw classifyAwsError(err, operation, resource);
  }
}

/** The AWS error code behind a classified error (for adapters that map one code to a domain error). */
export function causeName(err: CloudError): string {
  return awsErrorName(err.cause);
}
