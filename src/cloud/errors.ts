/**
 * Every adapter failure is a CloudError, classified once (see aws/classify.ts): `retryable`
 * tells activities whether Temporal should try again or fail the switch now.
 */
export class CloudError extends Error {
  override name = 'CloudError';
  constructor(
    message: string,
    readonly retryable: boolean,
    /** Short machine-readable kind, e.g. Throttling, NotFound, ChecksumMismatch. */
    readonly code: string,
    readonly resource?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export class StackFailedError extends CloudError {
  override name = 'StackFailedError';
  constructor(
    stack: string,
    readonly rawStatus: string,
    readonly failures: Array<{ resource: string; type: string; reason: string }>,
  ) {
    super(
      `stack ${stack} ended in ${rawStatus}` +
        (failures.length ? `: ${failures.map((f) => `${f.resource} (${f.type}): ${f.reason}`).join('; ')}` : ''),
      false,
      'StackFailed',
      stack,
    );
  }
}

export class DnsConflictError extends CloudError {
  override name = 'DnsConflictError';
  constructor(recordName: string, detail: string) {
    super(`DNS record ${recordName} is not what this switch expected: ${detail}`, false, 'DnsConflict', recordName);
  }
}
