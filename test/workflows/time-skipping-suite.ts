import { afterAll, beforeAll } from 'vitest';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { timeSkippingEnvironment, workflowBundle } from './harness.ts';

/**
 * One time-skipping server for the test file that calls this, stopped after its last test. The
 * workflows are bundled here too, so that the bundling counts against the hook's timeout and not
 * against the first test's. The environment exists once the file's tests run, hence the getter.
 */
export function useTimeSkippingEnvironment(): () => TestWorkflowEnvironment {
  let testEnv: TestWorkflowEnvironment | undefined;
  beforeAll(async () => {
    testEnv = await timeSkippingEnvironment();
    await workflowBundle();
  });
  afterAll(async () => {
    await testEnv?.teardown();
  });
  return () => {
    if (!testEnv) throw new Error('the time-skipping environment starts in beforeAll: ask for it inside a test');
    return testEnv;
  };
}
