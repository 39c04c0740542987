import { describe, expect, it } from 'vitest';
import { WorkflowExecutionAlreadyStartedError, WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure, RetryState } from '@temporalio/common';
import { ExitError } from '../../src/cli/errors.ts';
import { runToEnd } from '../../src/cli/switches.ts';
import { EXIT } from '../../src/switch/contract.ts';

async function exitOf(execute: () => Promise<unknown>): Promise<ExitError> {
  const err = await runToEnd('backup of dev', 'backup-dev', execute).catch((e: unknown) => e);
  if (!(err instanceof ExitError)) throw new Error(`expected an ExitError, got ${String(err)}`);
  return err;
}

describe('a one-off workflow run to its end', () => {
  it('answers its result', async () => {
    expect(await runToEnd('backup of dev', 'backup-dev', async () => ({ items: 3 }))).toEqual({ items: 3 });
  });

  it('is exit 3 when one is already running, naming its id', async () => {
    const busy = await exitOf(async () => {
      throw new WorkflowExecutionAlreadyStartedError('started', 'backup-dev', 'backupStack');
    });
    expect(busy.exitCode).toBe(EXIT.busy);
    expect(busy.message).toBe('a backup of dev is already running (backup-dev)');
  });

  it('is exit 1 with the root cause when it fails, and lets anything else through', async () => {
    const cause = ApplicationFailure.nonRetryable('no live stack', 'NoLiveStack');
    const failed = await exitOf(async () => {
      throw new WorkflowFailedError('Workflow execution failed', cause, RetryState.NON_RETRYABLE_FAILURE);
    });
    expect(failed.exitCode).toBe(EXIT.failed);
    expect(failed.message).toBe('backup of dev failed: no live stack');
    await expect(
      runToEnd('backup of dev', 'backup-dev', async () => {
        throw new TypeError('bug');
      }),
    ).rejects.toThrow(TypeError);
  });
});
