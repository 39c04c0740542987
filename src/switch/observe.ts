/**
 * One look at an environment, for src/switch/roles.ts: its stacks, its DNS record, and what every
 * stack with outputs says of its fence and drain (every node is asked whether it drains: drain is
 * per node). A stack that does not answer is named with why, not guessed at. I/O through the
 * ports and admin client it is handed: the planning activity, `switchyard gc` and
 * `switchyard stacks` look here; workflows do not import it.
 */
import type { Ports, StackOutputs } from '../cloud/ports.ts';
import type { StackAdmin } from '../navcloud/admin-client.ts';
import type { Observation, ObservedState } from './roles.ts';

export interface ObserveOptions {
  env: string;
  recordName: string;
  ports: Ports;
  admin(adminUrl: string): StackAdmin;
  signal?: AbortSignal;
}

export async function observeStacks(options: ObserveOptions): Promise<Observation> {
  const { ports, env } = options;
  const [stacks, record] = await Promise.all([ports.stacks.list(env), ports.dns.current(options.recordName)]);
  // DNS may name a stack the list lacks (another environment's, or one being deleted): its state still decides.
  if (record?.stack && !stacks.some((s) => s.name === record.stack)) {
    const named = await ports.stacks.describe(record.stack);
    if (named) stacks.push(named);
  }
  const states: Record<string, ObservedState> = {};
  const silent: Record<string, string> = {};
  await Promise.all(
    stacks.map(async (stack) => {
      if (!stack.outputs) return;
      try {
        states[stack.name] = await stateOf(options.admin(stack.outputs.adminUrl), stack.outputs, options.signal);
      } catch (err) {
        silent[stack.name] = (err as Error).message;
      }
    }),
  );
  return { record: record ?? null, stacks, states, ...(Object.keys(silent).length ? { silent } : {}) };
}

async function stateOf(
  admin: StackAdmin,
  { adminUrl, nodes }: StackOutputs,
  signal: AbortSignal | undefined,
): Promise<ObservedState> {
  const [stats, perNode] = await Promise.all([
    admin.stats(adminUrl, signal),
    // A node that does not answer says nothing of its drain; the stack's own answer must come.
    Promise.all(nodes.map((node) => admin.stats(node, signal).catch(() => undefined))),
  ]);
  const { fence } = stats;
  return {
    fence: { mode: fence.mode, epoch: fence.epoch, ...(fence.forwardTo ? { forwardTo: fence.forwardTo } : {}) },
    draining: stats.draining || perNode.some((n) => n?.draining),
    cursor: stats.cursor,
  };
}
