/**
 * `switchyard gc`: removes the stacks of runs that are over, chosen by src/switch/gc.ts. The
 * live stack, the stacks of a running switch or rollback and the previous live stack (the one
 * a rollback returns to: the live one forwards to it, or a switch drained it) are kept.
 */
import type { Ports, StackDescription } from '../cloud/ports.ts';
import type { StackAdmin } from '../navcloud/admin-client.ts';
import type { Logger } from '../logging.ts';
import { pointsTo } from '../cloud/dns-target.ts';
import { stacksToDelete } from './gc.ts';

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
  const stacks = await ports.stacks.list(env);
  const owned = await options.owned();
  const record = await ports.dns.current(options.recordName);
  const live = stacks.find((s) => s.outputs && pointsTo(record, { name: s.name, dnsTarget: s.outputs.dnsTarget }))?.name ?? record?.stack;
  const previous = await previousLive(options, stacks, live);
  const doomed = stacksToDelete(stacks, { live, owned, previous, keepStacks: options.keepStacks });
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

/** The stack the live one forwards to, else the newest ready one a switch drained. */
async function previousLive(options: CollectGarbageOptions, stacks: StackDescription[], live: string | undefined): Promise<string | undefined> {
  const liveStack = stacks.find((s) => s.name === live);
  const candidates = stacks.filter((s) => s.name !== live && s.status === 'ready' && s.outputs);
  const answers = await Promise.all([liveStack, ...candidates].map(async (s) => {
    if (!s?.outputs) return undefined;
    try {
      return await options.admin(s.outputs.adminUrl).stats(s.outputs.adminUrl);
    } catch {
      return undefined;
    }
  }));
  const [liveStats, ...candidateStats] = answers;
  const forwardedTo = candidates.find((s) => s.outputs?.endpoint === liveStats?.fence.forwardTo);
  if (forwardedTo) return forwardedTo.name;
  return candidates.find((_, i) => candidateStats[i]?.draining)?.name;
}
