/**
 * A stack's role, decided once: from one look at an environment (its stacks, the DNS record, and
 * what each stack said of its fence and drain), which stack is live, which takes the writes,
 * where a rollback returns, and which stacks may go. Planning, rollback, pointing back,
 * `switchyard gc`, `switchyard stacks` and `switchyard fleet` all ask here. Pure: workflow code
 * imports it, so its answers are pinned (test/fixtures/workflow-rules/).
 */
import type { DnsRecordState, StackDescription } from '../cloud/ports.ts';
import type { FenceMode } from '../navcloud/protocol.ts';
import { sameTarget } from '../cloud/dns-target.ts';

/** Forwards followed from the stack DNS names to the one that takes the writes. */
const MAX_FORWARD_HOPS = 3;

/** What one look at an environment saw. */
export interface Observation {
  /** The record the environment's name has (null: none). */
  record: DnsRecordState | null;
  /** The environment's stacks, and the one DNS names if the list lacks it. */
  stacks: StackDescription[];
  /** What each stack that answered its admin API said of itself, by name. */
  states: Record<string, ObservedState>;
  /** Stacks with outputs that did not answer, by name, with why: their fence is unknown. */
  silent?: Record<string, string>;
}

export interface ObservedState {
  fence: { mode: FenceMode; epoch: number; forwardTo?: string };
  /** One of its nodes drains: a switch or a rollback moved clients away from it, so it served them before. */
  draining: boolean;
  /** Where its export ends now: a copy into it from the stack that took over starts here. */
  cursor: string;
}

export interface StackRoles {
  /**
   * The stack DNS sends clients to: the one its ownership record names, when that one has
   * outputs; else the one whose target the record carries; else the one it names, however it is.
   */
  live?: StackDescription;
  /**
   * The stack that takes the writes: the live one, or the one it forwards to (a run died between
   * its commit and DNS), forwards followed a few hops. Of two stacks forwarding to each other the
   * live one committed to the other, which opens next: that one.
   */
  writer?: StackDescription;
  /**
   * Where a rollback returns: the writer when DNS names a stack that forwards to it (the rollback
   * finishes that move), else the newest ready stack that a switch drained. A stack kept after a
   * failed switch was never drained, so it is never previous.
   */
  previous?: StackDescription;
  /** For each stack that forwards to a stack of the environment, that stack's name. */
  forwardsTo: Record<string, string>;
}

export function stackRoles(seen: Observation): StackRoles {
  const forwardsTo: Record<string, string> = {};
  for (const [name, state] of Object.entries(seen.states)) {
    const to = seen.stacks.find((s) => forwardsEveryRequestTo(state.fence, s));
    if (to) forwardsTo[name] = to.name;
  }
  const live = liveStack(seen);
  let writer = live;
  const passed = new Set<string>();
  for (let hop = 0; hop < MAX_FORWARD_HOPS && writer; hop += 1) {
    passed.add(writer.name);
    const next = seen.stacks.find((s) => s.name === forwardsTo[writer!.name]);
    if (!next || passed.has(next.name)) break;
    writer = next;
  }
  const previous = writer && live && writer.name !== live.name ? writer : newestDrained(seen, live);
  return {
    ...(live ? { live } : {}),
    ...(writer ? { writer } : {}),
    ...(previous ? { previous } : {}),
    forwardsTo,
  };
}

/** Whether a stack whose fence is this forwards every request to `stack` (by its endpoint). */
export function forwardsEveryRequestTo(
  fence: { mode?: FenceMode; forwardTo?: string } | undefined,
  stack: { outputs?: { endpoint: string } },
): boolean {
  return fence?.mode === 'forwarding' && stack.outputs !== undefined && fence.forwardTo === stack.outputs.endpoint;
}

function liveStack(seen: Observation): StackDescription | undefined {
  const { record, stacks } = seen;
  if (!record) return undefined;
  const named = record.stack ? stacks.find((s) => s.name === record.stack) : undefined;
  if (named?.outputs) return named;
  return stacks.find((s) => s.outputs && sameTarget(s.outputs.dnsTarget, record.target)) ?? named;
}

function newestDrained(seen: Observation, live: StackDescription | undefined): StackDescription | undefined {
  return seen.stacks
    .filter((s) => s.name !== live?.name && s.status === 'ready' && s.outputs && seen.states[s.name]?.draining)
    .sort((a, b) => b.createdAt.localeCompare(a.createdAt))[0];
}

// ---------------------------------------------------------------- garbage

export interface KeepRules {
  /** The stack DNS sends clients to: never deleted. */
  live?: string;
  /** Stacks a running switch or rollback owns, and the writer: never deleted. */
  owned: string[];
  /** The stack that served before the live one: the first to be kept, it is where a rollback returns. */
  previous?: string;
  /** How many stacks besides the live and owned ones are kept. */
  keepStacks: number;
}

/**
 * The stacks to delete: every stack neither live, owned nor kept. Kept are, up to `keepStacks`,
 * the previous live stack first, then other ready stacks newest first; failed stacks and stacks
 * still creating for a run that is over never take a kept place. The switch's tear-down and its
 * clean-up at the start keep by the roles the run itself gave the stacks; `garbageOf` by what
 * was seen.
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

/** What may go, by the roles seen: never the live stack, the writer or a stack a running run owns; the previous one is kept first. */
export function garbageOf(
  seen: Observation,
  roles: StackRoles,
  keep: { owned: string[]; keepStacks: number },
): StackDescription[] {
  return stacksToDelete(seen.stacks, {
    ...(roles.live ? { live: roles.live.name } : {}),
    owned: [...keep.owned, ...(roles.writer ? [roles.writer.name] : [])],
    ...(roles.previous ? { previous: roles.previous.name } : {}),
    keepStacks: keep.keepStacks,
  });
}
