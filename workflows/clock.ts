/**
 * Workflow time. Inside the workflow sandbox Date is the deterministic clock of the workflow task
 * being processed (replay sees the same values), never the machine's wall clock.
 */
export const workflowNow = (): number => Date.now();
export const isoAt = (ms: number): string => new Date(ms).toISOString();
