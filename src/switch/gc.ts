/**
 * Which stacks of an environment may go: chosen by what each stack is, never by age alone. Pure
 * (workflow code imports it): the switch's tear-down, the clean-up at the start of every switch
 * and `switchyard gc` all decide here.
 */
import type { StackDescription } from '../cloud/ports.ts';

export interface KeepRules {
  /** The stack DNS sends clients to: never deleted. */
  live?: string;
  /** Stacks a running switch or rollback owns: never deleted. */
  owned: string[];
  /** The stack that served before the live one: the first to be kept, it is where a rollback returns. */
  previous?: string;
  /** How many stacks besides the live and owned ones are kept. */
  keepStacks: number;
}

/**
 * The stacks to delete: every stack neither live, owned nor kept. Kept are, up to `keepStacks`,
 * the previous live stack first, then other ready stacks newest first; failed stacks and stacks
 * still creating for a run that is over never take a kept place.
 */
export function stacksToDelete(stacks: readonly StackDescription[], rules: KeepRules): StackDescription[] {
  const present = stacks.filter((s) => s.status !== 'deleted' && s.status !== 'deleting');
  const spared = new Set([rules.live, ...rules.owned].filter((n): n is string => Boolean(n)));
  const candidates = present.filter((s) => !spared.has(s.name));
  const previous = candidates.filter((s) => s.name === rules.previous && s.outputs);
  const others = candidates
    .filter((s) => s.name !== rules.previous && s.status === 'ready')
    .sort((a, b) => b.createdAt.localeCompare(a.createdAt));
  const kept = new Set([...previous, ...others].slice(0, rules.keepStacks).map((s) => s.name));
  return candidates.filter((s) => !kept.has(s.name));
}
