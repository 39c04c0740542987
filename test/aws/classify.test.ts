import { describe, expect, it } from 'vitest';
import { classifyAwsError, awsCall } from '../../src/cloud/aws/classify.ts';
import { CloudError } from '../../src/cloud/errors.ts';

/** An SDK-shaped service error (what every @aws-sdk client throws after deserialising the answer). */
function awsError(name: string, message: string, status?: number, extra: Record<string, unknown> = {}) {
  return Object.assign(new Error(message), {
    name,
    $fault: status && status >= 500 ? 'server' : 'client',
    $metadata: { httpStatusCode: status, requestId: 'req-1' },
    ...extra,
  });
}
const systemError = (code: string) => Object.assign(new Error(`connect ${code} 10.0.0.1:443`), { code });

// Most of these answers cannot be provoked from moto (it never throttles, times out or denies).
describe('classifyAwsError', () => {
  const cases: Array<[string, unknown, string, boolean]> = [
    ['CloudFormation throttling', awsError('Throttling', 'Rate exceeded', 400), 'Throttling', true],
    ['S3 SlowDown', awsError('SlowDown', 'Please reduce your request rate.', 503), 'Throttling', true],
    [
      'Route53 PriorRequestNotComplete',
      awsError(
        'PriorRequestNotComplete',
        'The request was rejected because Route 53 was still processing a prior request.',
        400,
      ),
      'Throttling',
      true,
    ],
    ['Route53 ThrottlingException', awsError('ThrottlingException', 'Rate exceeded', 400), 'Throttling', true],
    ['HTTP 429', awsError('TooManyRequests', 'slow down', 429), 'Throttling', true],
    [
      'SDK throttling flag',
      awsError('SomethingNew', 'x', 400, { $retryable: { throttling: true } }),
      'Throttling',
      true,
    ],
    ['socket timeout', Object.assign(new Error('socket timed out'), { name: 'TimeoutError' }), 'Timeout', true],
    [
      'S3 RequestTimeout',
      awsError(
        'RequestTimeout',
        'Your socket connection to the server was not read from or written to within the timeout period.',
        400,
      ),
      'Timeout',
      true,
    ],
    ['ETIMEDOUT', systemError('ETIMEDOUT'), 'Timeout', true],
    ['ECONNRESET', systemError('ECONNRESET'), 'Network', true],
    ['ECONNREFUSED', systemError('ECONNREFUSED'), 'Network', true],
    ['ENOTFOUND', systemError('ENOTFOUND'), 'Network', true],
    ['EAI_AGAIN', systemError('EAI_AGAIN'), 'Network', true],
    ['socket hang up', new Error('socket hang up'), 'Network', true],
    ['S3 InternalError', awsError('InternalError', 'We encountered an internal error.', 500), 'ServiceError', true],
    ['503 ServiceUnavailable', awsError('ServiceUnavailable', 'Service Unavailable', 503), 'ServiceError', true],
    ['unparseable 502', awsError('Error', 'bad gateway', 502), 'ServiceError', true],
    [
      'CloudFormation ValidationError',
      awsError('ValidationError', 'Parameters: [ArtifactKey] must have values', 400),
      'Validation',
      false,
    ],
    ['Route53 InvalidChangeBatch', awsError('InvalidChangeBatch', 'Invalid XML', 400), 'Validation', false],
    ['S3 InvalidArgument', awsError('InvalidArgument', 'Part number must be an integer', 400), 'Validation', false],
    [
      'InsufficientCapabilities',
      awsError('InsufficientCapabilitiesException', 'Requires capabilities : [CAPABILITY_NAMED_IAM]', 400),
      'Validation',
      false,
    ],
    ['AccessDenied', awsError('AccessDenied', 'Access Denied', 403), 'AccessDenied', false],
    [
      'AccessDeniedException',
      awsError('AccessDeniedException', 'User is not authorized to perform: route53:ChangeResourceRecordSets', 400),
      'AccessDenied',
      false,
    ],
    ['bare 403', awsError('Forbidden', '', 403), 'AccessDenied', false],
    [
      'InvalidClientTokenId',
      awsError('InvalidClientTokenId', 'The security token included in the request is invalid.', 403),
      'AccessDenied',
      false,
    ],
    [
      'ExpiredToken',
      awsError('ExpiredToken', 'The security token included in the request is expired', 400),
      'AccessDenied',
      false,
    ],
    [
      'missing credentials',
      Object.assign(new Error('Could not load credentials from any providers'), { name: 'CredentialsProviderError' }),
      'AccessDenied',
      false,
    ],
    ['NoSuchKey', awsError('NoSuchKey', 'The specified key does not exist.', 404), 'NotFound', false],
    ['NoSuchBucket', awsError('NoSuchBucket', 'The specified bucket does not exist', 404), 'NotFound', false],
    ['HeadObject 404', awsError('NotFound', 'UnknownError', 404), 'NotFound', false],
    ['NoSuchHostedZone', awsError('NoSuchHostedZone', 'No hosted zone found with ID: Z1', 404), 'NotFound', false],
    ['NoSuchChange', awsError('NoSuchChange', 'Could not find resource with ID: C1', 404), 'NotFound', false],
    [
      'missing stack',
      awsError('ValidationError', 'Stack with id navcloud-dev-blue-1 does not exist', 400),
      'NotFound',
      false,
    ],
    [
      'AlreadyExists',
      awsError('AlreadyExistsException', 'Stack [navcloud-dev-blue-1] already exists', 400),
      'AlreadyExists',
      false,
    ],
    ['stack quota', awsError('LimitExceededException', 'Limit for stacks exceeded', 400), 'LimitExceeded', false],
    ['abort', Object.assign(new Error('This operation was aborted'), { name: 'AbortError' }), 'Aborted', false],
    ['programming error', new TypeError('Cannot read properties of undefined'), 'Unexpected', false],
  ];

  it.each(cases)('%s → %s', (_label, err, code, retryable) => {
    const classified = classifyAwsError(err, 'cloudformation:CreateStack', 'navcloud-dev-blue-1');
    expect(classified).toBeInstanceOf(CloudError);
    expect({ code: classified.code, retryable: classified.retryable }).toEqual({ code, retryable });
    expect(classified.resource).toBe('navcloud-dev-blue-1');
    expect(classified.cause).toBe(err);
  });

  it('names the call, the resource and carries the AWS message, code and request id', () => {
    const classified = classifyAwsError(awsError('AccessDenied', 'Access Denied', 403), 's3:GetObject', 's3://b/k');
    expect(classified.message).toBe(
      's3:GetObject on s3://b/k failed: Access Denied (AccessDenied, HTTP 403, request req-1)',
    );
  });

  it('leaves an already classified error alone', async () => {
    const original = new CloudError('x', true, 'Throttling');
    expect(classifyAwsError(original, 'op')).toBe(original);
    await expect(
      awsCall('op', 'r', async () => {
        throw original;
      }),
    ).rejects.toBe(original);
    await expect(
      awsCall('route53:GetChange', 'C1', async () => {
        throw systemError('ECONNRESET');
      }),
    ).rejects.toMatchObject({ code: 'Network', retryable: true, resource: 'C1' });
  });
});
