/**
 * The fence of a stack as a test sets it up: each change expects the fence as it reads it now
 * (the switch's own steps, which carry the epoch they hold, are activities/fence.ts).
 */
import type { StackAdmin } from '../../src/navcloud/admin-client.ts';
import type { FenceResult } from '../../src/navcloud/protocol.ts';

const asRead = (now: FenceResult) => ({ epoch: now.epoch, mode: now.mode });

export async function fenceAsIs(admin: StackAdmin, leaseSeconds: number, by = 'test'): Promise<FenceResult> {
  return admin.fence({ expected: asRead(await admin.fenceState()), by, leaseSeconds });
}

/** Fences the stack (if it is not already) and makes it forward to `to`, with the cursor it has. */
export async function forwardAsIs(admin: StackAdmin, to: string, by = 'test'): Promise<FenceResult> {
  let now = await admin.fenceState();
  if (now.mode !== 'fenced') now = await admin.fence({ expected: asRead(now), by, leaseSeconds: 60 });
  return admin.forward({ expected: asRead(now), by, cursor: now.cursor, to });
}

export async function unfenceAsIs(admin: StackAdmin, by = 'test'): Promise<FenceResult> {
  return admin.unfence({ expected: asRead(await admin.fenceState()), by });
}
