/**
 * `switchyard gc`: removes the stacks of runs that are over, chosen by their roles
 * (src/switch/roles.ts). The live stack, the writer, the stacks of a running switch or rollback
 * and the previous live stack (where a rollback returns) are kept.
 */
import type { Ports } from '../cloud/ports.ts';
import type { StackAdmin } from '../navcloud/admin-client.ts';
import type { Logger } from '../logging.ts';
import { observeStacks } from './observe.ts';
import { garbageOf, stackRoles } from './roles.ts';

export interface CollectGarbageOptions {
  env: string;
  recordName: string;
  keepStacks: number;
  ports: Ports;
  admin(adminUrl: string): StackAdmin;
  /** Stacks a running switch or rollback owns, read AFTER the stacks were listed (one started later made none of them). */
  owned(): Promise<string[]>;
  /** Only say what would go. */
  dryRun?: boolean;
  logger: Logger;
}

export interface Collected {
  live?: string;
  kept: string[];
  deleted: string[];
  /** Stacks that could not be deleted, with why. */
  failed: Array<{ stack: string; reason: string }>;
}

export async function collectGarbage(options: CollectGarbageOptions): Promise<Collected> {
  const { ports, env } = options;
  const seen = await observeStacks(options);
  const owned = await options.owned();
  const roles = stackRoles(seen);
  const live = roles.live?.name ?? seen.record?.stack;
  const doomed = garbageOf(seen, roles, { owned, keepStacks: options.keepStacks });
  const { stacks } = seen;
  const result: Collected = { ...(live ? { live } : {}), kept: [], deleted: [], failed: [] };
  result.kept = stacks.filter((s) => !doomed.includes(s)).map((s) => s.name);
  for (const stack of doomed) {
    if (options.dryRun) {
      result.deleted.push(stack.name);
      continue;
    }
    try {
      // DNS is read again right before each delete: the stack clients are sent to is never deleted.
      const now = await ports.dns.current(options.recordName);
      if (now?.stack === stack.name) throw new Error(`DNS record ${options.recordName} points to it now`);
      await ports.stacks.delete(stack.name);
      await ports.stacks.waitUntilDeleted(stack.name);
      result.deleted.push(stack.name);
      options.logger.info({ env, stack: stack.name, status: stack.rawStatus }, 'deleted stack of a run that is over');
    } catch (err) {
      result.failed.push({ stack: stack.name, reason: (err as Error).message });
    }
  }
  return result;
}
