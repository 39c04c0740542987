/**
 * The switch's invariants I1–I6 (docs/invariants.md) as a pure check over a snapshot of the world:
 * the stacks with their fences as each node sees them, where DNS points, which stacks passed their
 * smoke checks, the writes clients were told succeeded and where they are, and the runs. The fault
 * explorer (test/explorer) checks every step of its fake world with it; other tests may too.
 */
import type { FenceMode } from '../../src/navcloud/protocol.ts';

/**
 * The fence as one node acts on it now, by that node's own clock: a node whose lease lapsed is
 * 'open' (the world that makes the snapshot decides, since nodes' clocks need not agree).
 */
export interface NodeFence {
  mode: FenceMode;
  /** For a 'fenced' node: how long until it opens by itself, by its own clock (ms). */
  leaseLeftMs?: number;
  /** The stack every request is forwarded to ('forwarding' only). */
  forwardTo?: string;
}

export interface StackSnapshot {
  name: string;
  /** Gone: answers nothing, its data is lost. */
  deleted: boolean;
  nodes: NodeFence[];
  smoke: 'passed' | 'failed' | 'not-run';
  /** Workflow id of the run that created it; absent for stacks that were there before. */
  createdBy?: string;
  /**
   * Clients were sent to it at some time (DNS pointed to it, or a stack they reach forwarded to
   * it): with cached DNS or kept-alive connections they may still reach it.
   */
  everLive: boolean;
  /** Item id -> revision held. */
  items: Record<string, string>;
}

/** A write a client was told succeeded, with the stack that applied it. */
export interface AcknowledgedWrite {
  id: string;
  rev: string;
  stack: string;
  at: number;
}

export interface RunSnapshot {
  workflowId: string;
  kind: 'switch' | 'rollback';
  state: 'running' | 'closed' | 'terminated';
  /** The run left its report (a switch's written report; a rollback's returned one). */
  reported: boolean;
  /** Started with --keep-failed: a stack it created may stay. */
  keepFailed?: boolean;
  /** The run changed the world (a stack, a fence, DNS, data) at least once. */
  acted: boolean;
}

/** One change of the DNS record, with the fence of the stack it pointed to until then. */
export interface DnsFlip {
  at: number;
  from?: string;
  to: string;
  /** The effective fence mode of `from` when DNS left it (all nodes agreeing, else the laxest). */
  fromMode?: FenceMode;
  /** For a fenced `from`: lease left, ms. */
  fromLeaseLeftMs?: number;
}

export interface WorldSnapshot {
  /** World time, epoch ms (the Temporal server's clock). */
  now: number;
  /** The fence lease a switch asks for (fenceLeaseSeconds). */
  leaseMs: number;
  /** Previous live stacks a switch keeps (keepStacks). */
  keepStacks: number;
  /** The stack DNS points to. */
  dns?: string;
  stacks: StackSnapshot[];
  writes: AcknowledgedWrite[];
  runs: RunSnapshot[];
  flips: DnsFlip[];
}

export type Invariant = 'I1' | 'I2' | 'I3' | 'I4' | 'I5' | 'I6';

export interface Violation {
  invariant: Invariant;
  message: string;
}

/** Revisions are `<generation>-<nonce>`: the higher generation wins, a tie goes to the higher nonce. */
export function compareRevisions(a: string, b: string): number {
  const [genA = '0', nonceA = ''] = a.split('-');
  const [genB = '0', nonceB = ''] = b.split('-');
  const byGeneration = (Number(genA) || 0) - (Number(genB) || 0);
  if (byGeneration !== 0) return Math.sign(byGeneration);
  return nonceA === nonceB ? 0 : nonceA < nonceB ? -1 : 1;
}

const byName = (snapshot: WorldSnapshot) => new Map(snapshot.stacks.map((s) => [s.name, s]));

/** Some node of the stack applies writes itself. */
function acknowledgesOwnWrites(stack: StackSnapshot): boolean {
  return !stack.deleted && stack.nodes.some((node) => node.mode === 'open');
}

/**
 * A client sent to `name` gets its write applied: every node is open, or forwards to a stack
 * whose nodes are (following forwards a few hops).
 */
export function acceptsWrites(snapshot: WorldSnapshot, name: string, hops = 3): boolean {
  const stack = byName(snapshot).get(name);
  if (!stack || stack.deleted || hops < 0) return false;
  return stack.nodes.every((node) => {
    if (node.mode === 'open') return true;
    if (node.mode === 'forwarding' && node.forwardTo) return acceptsWrites(snapshot, node.forwardTo, hops - 1);
    return false;
  });
}

/** The stack that answers for `name`: itself, or the stack all its nodes forward to (a few hops). */
export function servingStack(snapshot: WorldSnapshot, name: string, hops = 3): string {
  const stack = byName(snapshot).get(name);
  const targets = new Set(stack?.nodes.map((n) => (n.mode === 'forwarding' ? n.forwardTo : undefined)));
  const [target] = [...targets];
  if (hops <= 0 || targets.size !== 1 || target === undefined) return name;
  return servingStack(snapshot, target, hops - 1);
}

/** Checks that must hold after every step of the world. */
export function checkStep(snapshot: WorldSnapshot): Violation[] {
  const violations: Violation[] = [];
  const stacks = byName(snapshot);

  // I1: of the stacks clients can reach, at most one applies writes of its own.
  const writers = snapshot.stacks.filter((s) => s.everLive && acknowledgesOwnWrites(s)).map((s) => s.name);
  if (writers.length > 1) {
    violations.push({
      invariant: 'I1',
      message: `stacks ${writers.join(' and ')} both acknowledge writes of their own (clients reach both)`,
    });
  }

  // I2: a fence always ends by itself, and DNS never leaves a stack whose lease is about to lapse.
  for (const stack of snapshot.stacks) {
    stack.nodes.forEach((node, i) => {
      if (node.mode !== 'fenced' || stack.deleted) return;
      if (node.leaseLeftMs === undefined) {
        violations.push({ invariant: 'I2', message: `${stack.name} node ${i + 1} is fenced without a lease` });
      } else if (node.leaseLeftMs > snapshot.leaseMs) {
        violations.push({
          invariant: 'I2',
          message: `${stack.name} node ${i + 1} is fenced for ${node.leaseLeftMs} ms, more than the ${snapshot.leaseMs} ms lease`,
        });
      }
    });
  }
  for (const flip of snapshot.flips) {
    if (flip.fromMode === 'fenced' && (flip.fromLeaseLeftMs ?? 0) < snapshot.leaseMs / 2) {
      violations.push({
        invariant: 'I2',
        message: `DNS moved from ${flip.from} to ${flip.to} with ${flip.fromLeaseLeftMs ?? 0} ms of the fence lease left (less than half)`,
      });
    }
  }

  // I3 (as far as it can hold mid-run): no acknowledged write lives only on deleted stacks.
  for (const write of snapshot.writes) {
    const held = snapshot.stacks.some(
      (s) => !s.deleted && s.items[write.id] !== undefined && compareRevisions(s.items[write.id]!, write.rev) >= 0,
    );
    if (!held)
      violations.push({
        invariant: 'I3',
        message: `write ${write.id}@${write.rev} acknowledged by ${write.stack} is on no stack any more`,
      });
  }

  // I4: DNS points to a stack that exists and passed its smoke checks.
  if (snapshot.dns) {
    const live = stacks.get(snapshot.dns);
    if (!live || live.deleted)
      violations.push({ invariant: 'I4', message: `DNS points to ${snapshot.dns}, which was deleted` });
    else if (live.smoke !== 'passed')
      violations.push({
        invariant: 'I4',
        message: `DNS points to ${snapshot.dns}, whose smoke checks ${live.smoke === 'failed' ? 'failed' : 'never ran'}`,
      });
  }

  // I6: one switch or rollback acts on the environment at a time.
  const acting = snapshot.runs.filter((r) => r.state === 'running' && r.acted).map((r) => r.workflowId);
  if (acting.length > 1)
    violations.push({
      invariant: 'I6',
      message: `runs ${acting.join(' and ')} act on the environment at the same time`,
    });
  return violations;
}

/**
 * Checks that must hold once every run has closed and the world has been left alone for longer
 * than the fence lease (so every fence of a dead run has lapsed).
 */
export function checkEnd(snapshot: WorldSnapshot): Violation[] {
  const violations = checkStep(snapshot);
  const stacks = byName(snapshot);

  // I2: the stack DNS points to takes writes again.
  if (snapshot.dns && !acceptsWrites(snapshot, snapshot.dns)) {
    violations.push({
      invariant: 'I2',
      message: `${snapshot.dns}, where DNS points, still refuses writes after the runs ended and the lease passed`,
    });
  }

  // I3: every acknowledged write is on the stack that serves the DNS name (where the stack DNS
  // points to forwards, if it does), at its revision or a newer one.
  const serving = snapshot.dns ? servingStack(snapshot, snapshot.dns) : undefined;
  const live = serving ? stacks.get(serving) : undefined;
  const lost = snapshot.writes.filter((w) => {
    const have = live?.items[w.id];
    return have === undefined || compareRevisions(have, w.rev) < 0;
  });
  if (lost.length) {
    const sample = lost
      .slice(0, 5)
      .map((w) => `${w.id}@${w.rev} (acknowledged by ${w.stack})`)
      .join(', ');
    violations.push({
      invariant: 'I3',
      message: `${lost.length} acknowledged writes are missing on ${serving ?? 'the live stack (DNS points nowhere)'}: ${sample}`,
    });
  }

  // I5: what remains is the live stack, up to keepStacks stacks that served before, and stacks kept on purpose.
  const closed = new Map(snapshot.runs.filter((r) => r.state !== 'running').map((r) => [r.workflowId, r]));
  const remaining = snapshot.stacks.filter((s) => !s.deleted && s.name !== snapshot.dns);
  const previous = remaining.filter((s) => s.everLive);
  if (previous.length > snapshot.keepStacks) {
    violations.push({
      invariant: 'I5',
      message: `${previous.length} previous live stacks remain (${previous.map((s) => s.name).join(', ')}), more than keepStacks ${snapshot.keepStacks}`,
    });
  }
  for (const stack of remaining.filter((s) => !s.everLive && s.createdBy !== undefined)) {
    const run = closed.get(stack.createdBy!);
    if (run && !run.keepFailed)
      violations.push({
        invariant: 'I5',
        message: `${stack.name} of closed run ${run.workflowId} was never live and is still there`,
      });
  }

  // I6: every run that closed left its report.
  for (const run of snapshot.runs) {
    if (run.state === 'closed' && !run.reported)
      violations.push({ invariant: 'I6', message: `${run.kind} ${run.workflowId} closed without a report` });
  }
  return violations;
}
