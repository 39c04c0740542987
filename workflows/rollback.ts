/**
 * The `rollback` workflow: sends clients back to the previous stack, if it still exists, without
 * losing what the current stack accepted meanwhile: the same point-DNS-back step a switch undoes
 * its flip with (workflows/point-back.ts). Which stack is previous is a stack's role
 * (src/switch/roles.ts): one a switch drained; never one kept after a failed switch
 * (--keep-failed), unless named; when DNS names a stack that forwards to another (an earlier
 * rollback moved the writer but not DNS), that one. It runs under the environment's switch
 * workflow id, so a switch and a rollback never overlap (one lock).
 * Rollbacks started by the previous release finish on the code they started with (workflows/v1).
 */
import { CancellationScope, isCancellation, patched, setHandler, workflowInfo } from '@temporalio/workflow';
import {
  DEFAULT_FENCE_LEASE_SECONDS,
  DEFAULT_MAX_WRITE_PAUSE_SECONDS,
  statusQuery,
  type RollbackInput,
  type RollbackReport,
  type SwitchStatus,
} from '../src/switch/contract.ts';
import type { StackDescription } from '../src/cloud/ports.ts';
import { stackRoles, type Observation } from '../src/switch/roles.ts';
import type { StackRef, StackState } from '../activities/types.ts';
import { persistent, quick } from './activities.ts';
import { pointDnsBack, startPointingBack, type PointBack } from './point-back.ts';
import { PATCHES } from './patches.ts';
import { reasonOf } from './failures.ts';
import { isoAt, workflowNow } from './clock.ts';
import { rollbackV1 } from './v1/rollback.ts';

export async function rollback(input: RollbackInput): Promise<RollbackReport> {
  if (!patched(PATCHES.protocolV2)) return rollbackV1(input);
  const { env, by } = input;
  const startedAt = workflowNow();
  const status: SwitchStatus = {
    env,
    phase: 'rolling-back',
    phases: [{ name: 'rolling-back', startedAt: isoAt(startedAt), durationMs: 0 }],
  };
  setHandler(statusQuery, () => status);
  const report = (outcome: RollbackReport['outcome'], fields: Partial<RollbackReport> = {}): RollbackReport => {
    status.phase = outcome === 'rolled-back' ? 'done' : 'failed';
    if (fields.reason && outcome !== 'rolled-back') status.error = fields.reason;
    return {
      env,
      workflowId: workflowInfo().workflowId,
      outcome,
      by,
      startedAt: isoAt(startedAt),
      finishedAt: isoAt(workflowNow()),
      ...fields,
    };
  };

  let from: StackRef | undefined;
  let to: StackRef | undefined;
  const progress = startPointingBack();
  try {
    const plan = await quick.planSwitch(env);
    const live = plan.live?.stack;
    if (!plan.live || !live?.outputs) {
      return report('failed', {
        reason: `the DNS record of ${env} sends clients to no stack with outputs: nothing to roll back from`,
      });
    }
    const found =
      patched(PATCHES.stackRoles) && plan.observed
        ? returnByRoles(input, plan.observed)
        : plan.live.forwardedBy
          ? await forwardingStack(env, plan.live.forwardedBy, live)
          : await previousStack(
              input,
              live,
              patched(PATCHES.rollbackFollowsForward) ? undefined : await askedLiveStack(env, live),
            );
    if (typeof found !== 'object')
      return report('failed', { from: live.name, reason: found ?? nothingToReturnTo(input) });
    from = found.from;
    to = found.stack;
    status.from = { stack: from.name, colour: from.colour };
    status.to = { stack: to.name, colour: to.colour };
    const { settings } = plan;
    // Runs planned before these settings existed get the environment file's defaults.
    const back: PointBack = {
      env,
      recordName: settings.recordName,
      leaseSeconds: settings.fenceLeaseSeconds ?? DEFAULT_FENCE_LEASE_SECONDS,
      from,
      to,
      since: found.cursor,
      undrain: found.draining,
      catchUpFenceBelow: settings.catchUpFenceBelow,
      maxWritePauseSeconds: settings.maxWritePauseSeconds ?? DEFAULT_MAX_WRITE_PAUSE_SECONDS,
    };
    await pointDnsBack(back, () => undefined, progress);
    const left = from;
    await CancellationScope.nonCancellable(async () => {
      try {
        await quick.drainStack({ env, adminUrl: left.outputs.adminUrl, nodes: left.outputs.nodes });
      } catch {
        // DNS already points back; a node that cannot be told to drain still loses its clients with the TTL.
      }
    });
    return report('rolled-back', { from: from.name, to: to.name, ...(input.comment ? { reason: input.comment } : {}) });
  } catch (err) {
    return CancellationScope.nonCancellable(() => failed(err));
  }

  async function failed(err: unknown): Promise<RollbackReport> {
    let reason = isCancellation(err) ? 'cancelled' : reasonOf(err);
    if (to && progress.writerMoved) {
      reason += progress.dnsBack
        ? `; DNS points to ${to.name}, which takes the writes again, and ${from?.name} forwards to it`
        : `; ${to.name} takes the writes while DNS still names ${from?.name}, which forwards to it`;
    } else if (to && progress.undrained) {
      // Drained again, it stays the stack a later rollback finds and returns to.
      try {
        await persistent.drainStack({ env, adminUrl: to.outputs.adminUrl, nodes: to.outputs.nodes });
      } catch (drainErr) {
        reason += `; ${to.name} could not be drained again (${reasonOf(drainErr)}), so a later rollback will not pick it by itself`;
      }
    }
    return report(isCancellation(err) ? 'cancelled' : 'failed', {
      ...(from ? { from: from.name } : {}),
      ...(to ? { to: to.name } : {}),
      reason,
    });
  }
}

function nothingToReturnTo({ env, to }: RollbackInput): string {
  return to
    ? `stack ${to} of ${env} does not exist or is not ready`
    : `no previous stack of ${env} exists, is ready and served clients before`;
}

interface Previous {
  /** The stack clients are sent to now. */
  from: StackRef;
  /** The stack to return to, where a copy into it starts, and whether a switch drained it. */
  stack: StackRef;
  cursor: string;
  draining: boolean;
}

/**
 * By the roles of planning's look: from the stack DNS names to the previous one (the writer, when
 * the one DNS names forwards to it), or to the stack named, when it is ready. Why not, otherwise.
 */
function returnByRoles(input: RollbackInput, seen: Observation): Previous | string {
  const { env } = input;
  const roles = stackRoles(seen);
  const forwarding = roles.writer?.name !== roles.live?.name;
  const to =
    input.to && !forwarding
      ? seen.stacks.find((s) => s.name === input.to && s.name !== roles.live?.name && s.status === 'ready')
      : roles.previous;
  const from = roles.live && refOf(roles.live);
  const stack = to && refOf(to);
  if (!from || !stack) return nothingToReturnTo(input);
  const state = seen.states[stack.name];
  if (!state)
    return `stack ${stack.name} of ${env} did not answer its admin API: ${seen.silent?.[stack.name] ?? 'not asked'}`;
  return { from, stack, cursor: state.cursor, draining: state.draining };
}

/**
 * Runs started before patch stack-roles: the named stack, else the newest ready stack a switch drained: only such a stack served clients
 * before. `liveState` is how rollbacks started before patch rollback-follows-forward found the stack
 * the live one forwards to (they asked the live stack; planning does it now).
 */
async function previousStack(
  input: RollbackInput,
  live: StackDescription,
  liveState?: StackState,
): Promise<Previous | undefined> {
  const { env } = input;
  const from = refOf(live);
  if (!from) return undefined;
  const candidates = (await quick.listStacks(env)).filter(
    (s) => s.name !== live.name && s.status === 'ready' && (!input.to || s.name === input.to),
  );
  const forwardedTo = liveState?.forwardTo
    ? candidates.find((s) => s.outputs?.endpoint === liveState.forwardTo)
    : undefined;
  for (const candidate of forwardedTo ? [forwardedTo] : candidates) {
    const stack = refOf(candidate);
    if (!stack) continue;
    const state = await quick.stackState({ env, adminUrl: stack.outputs.adminUrl, nodes: stack.outputs.nodes });
    // One kept after a failed switch never passed, so it was never drained.
    if (forwardedTo || input.to || state.draining)
      return { from, stack, cursor: state.cursor, draining: state.draining };
  }
  return undefined;
}

/**
 * DNS names a stack that forwards to `writer` (an earlier rollback, or a switch, moved the writer
 * but not DNS): rolling back finishes the job, from the stack DNS names to the writer.
 */
async function forwardingStack(
  env: string,
  forwardedBy: string,
  writer: StackDescription,
): Promise<Previous | undefined> {
  const named = (await quick.listStacks(env)).find((s) => s.name === forwardedBy);
  const from = named && refOf(named);
  const stack = refOf(writer);
  if (!from || !stack) return undefined;
  const state = await quick.stackState({ env, adminUrl: stack.outputs.adminUrl, nodes: stack.outputs.nodes });
  return { from, stack, cursor: state.cursor, draining: state.draining };
}

async function askedLiveStack(env: string, live: StackDescription): Promise<StackState | undefined> {
  return live.outputs ? quick.stackState({ env, adminUrl: live.outputs.adminUrl }) : undefined;
}

function refOf(stack: StackDescription): StackRef | undefined {
  return stack.outputs ? { name: stack.name, colour: stack.colour, outputs: stack.outputs } : undefined;
}
