/**
 * The judges of `npm run chaos`: each looks only at what the outside saw — the clients' figures and
 * history, each node's own journal of the writes it acknowledged, the run's end as its starter saw
 * it, DNS, a probe write and the stacks left after `switchyard gc` — never at the workflow's own
 * account. Pure functions of the evidence, so each can be shown to fail on broken evidence.
 */
import type { ClientFigures, LinearizabilityVerdict } from '../switch/contract.ts';
import type { RunAction } from './plan.ts';

/** One write a stack's node acknowledged, from its journal (AckJournalLine) and the folder it sits in. */
export interface Acknowledgment {
  stack: string;
  id: string;
  /** When the node's store call began and ended (epoch ms, one clock for every local process). */
  from: number;
  to: number;
}

/** How the run's workflow ended, as its starter saw it; `stuck` if it had not closed within the bound. */
export type RunEnd = 'switched' | 'rolled-back' | 'failed' | 'aborted' | 'cancelled' | 'terminated' | 'stuck';

export interface RunEvidence {
  action: RunAction;
  end: RunEnd;
  /** From the workflow's start to its close, as the starter saw it. */
  closedAfterMs: number;
  /** The retrying clients' figures, with the plain ones' as `nonRetrying` and Porcupine's verdict. */
  clients: ClientFigures;
  /** The acknowledgments of this run's clients, from every node of every stack; `truncated`: a journal hit its bound. */
  acks: Acknowledgment[];
  journalsTruncated: boolean;
  /** A write through the public name after the run closed: taken, and how long it took to be. */
  probe: { ok: boolean; afterMs: number; detail: string };
  /** Stacks left after `switchyard gc` beyond the live one and the ones keepStacks keeps, and stack node processes of no stack. */
  leftovers: string[];
}

export interface RecoveryBound {
  /** The run's workflow closes within this long of its start. */
  closeMs: number;
  /** After the run closed, a write through the public name is taken within this long. */
  writableMs: number;
}

export type JudgeName = 'lost writes' | 'linearizable' | 'one writer' | 'streams' | 'recovered';

export interface Verdict {
  judge: JudgeName;
  ok: boolean;
  detail: string;
}

export function judgeRun(evidence: RunEvidence, bound: RecoveryBound): Verdict[] {
  return [
    judgeLostWrites(evidence.clients),
    judgeLinearizable(evidence.clients.linearizability),
    judgeOneWriter(evidence.acks, writerChangesAllowed(evidence.action, evidence.end), evidence.journalsTruncated),
    judgeStreams(evidence.clients),
    judgeRecovery(evidence, bound),
  ];
}

/** Every acknowledged write is on the stack DNS names (or superseded by a later write of its client): ClientFigures.writesLost of both kinds of client. */
export function judgeLostWrites(clients: ClientFigures): Verdict {
  const lost = clients.writesLost + (clients.nonRetrying?.writesLost ?? 0);
  const acked = clients.writesAcknowledged + (clients.nonRetrying?.writesAcknowledged ?? 0);
  return {
    judge: 'lost writes',
    ok: lost === 0,
    detail: `${lost} of ${acked} acknowledged writes missing from the stack DNS names`,
  };
}

export function judgeLinearizable(verdict: LinearizabilityVerdict | undefined): Verdict {
  if (!verdict) return { judge: 'linearizable', ok: false, detail: 'no verdict: the checker did not run' };
  const violations = verdict.violations.length ? `; violations on ${verdict.violations.slice(0, 5).join(', ')}` : '';
  return {
    judge: 'linearizable',
    ok: verdict.ok,
    detail: `Porcupine: ${verdict.result} over ${verdict.operations} operations on ${verdict.keys} items${violations}${verdict.detail ? ` (${verdict.detail})` : ''}`,
  };
}

/**
 * How often the stack acknowledging the clients' writes may change in one run: once per hand-over
 * the run can make. A switch forwards (1), may point DNS back (2) and, when that fails once the
 * writer moved, move it back (3); a rollback hands over (1) and may move it back (2).
 */
export function writerChangesAllowed(action: RunAction, end: RunEnd): number {
  if (action === 'switch') return end === 'switched' ? 1 : end === 'rolled-back' ? 2 : 3;
  return end === 'rolled-back' ? 1 : 2;
}

/**
 * One writer: no two stacks acknowledged writes in overlapping intervals (each acknowledgment is
 * the node's store call, from its start to its end), and the stack acknowledging writes changed no
 * more often than the run could hand over. Two stacks open at once show as one or the other:
 * writes applied at the same moment on both, or acknowledgments alternating between them.
 */
export function judgeOneWriter(acks: Acknowledgment[], changesAllowed: number, truncated = false): Verdict {
  const byStart = [...acks].sort((a, b) => a.from - b.from);
  const overlaps: Array<[Acknowledgment, Acknowledgment]> = [];
  let open: Acknowledgment[] = [];
  for (const ack of byStart) {
    open = open.filter((o) => o.to >= ack.from);
    for (const other of open) if (other.stack !== ack.stack) overlaps.push([other, ack]);
    open.push(ack);
  }
  const tenures: Array<{ stack: string; from: number; to: number; writes: number }> = [];
  for (const ack of [...acks].sort((a, b) => a.to - b.to)) {
    const last = tenures.at(-1);
    if (last?.stack === ack.stack) {
      last.to = ack.to;
      last.writes++;
    } else tenures.push({ stack: ack.stack, from: ack.to, to: ack.to, writes: 1 });
  }
  const changes = Math.max(0, tenures.length - 1);
  const ok = overlaps.length === 0 && changes <= changesAllowed;
  const sequence =
    tenures
      .slice(0, 8)
      .map((t) => `${t.stack} ×${t.writes}`)
      .join(' → ') + (tenures.length > 8 ? ` → … (${tenures.length} in all)` : '');
  const overlap = overlaps[0]
    ? `; ${overlaps.length} overlapping pairs, first ${describeAck(overlaps[0][0])} and ${describeAck(overlaps[0][1])}`
    : '';
  return {
    judge: 'one writer',
    ok,
    detail:
      `${acks.length} acknowledgments, writer changed ${changes} times (at most ${changesAllowed}): ` +
      `${sequence || 'none'}${overlap}${truncated ? '; a journal was truncated, judged on what it holds' : ''}`,
  };
}

function describeAck(ack: Acknowledgment): string {
  return `${ack.id} on ${ack.stack} [${new Date(ack.from).toISOString()} +${(ack.to - ack.from).toFixed(1)} ms]`;
}

/** Streams missed no acknowledged change and got none twice (the clients count both per stream). */
export function judgeStreams(clients: ClientFigures): Verdict {
  const missed = clients.missedEvents + (clients.nonRetrying?.missedEvents ?? 0);
  const duplicates = clients.duplicateEvents + (clients.nonRetrying?.duplicateEvents ?? 0);
  return {
    judge: 'streams',
    ok: missed === 0 && duplicates === 0,
    detail: `${missed} changes missed, ${duplicates} received twice`,
  };
}

/** The run ended switched, rolled back or failed within the bound; then DNS named a stack that took a write; gc left nothing behind. */
export function judgeRecovery(
  evidence: Pick<RunEvidence, 'end' | 'closedAfterMs' | 'probe' | 'leftovers'>,
  bound: RecoveryBound,
): Verdict {
  const problems: string[] = [];
  if (!['switched', 'rolled-back', 'failed'].includes(evidence.end)) problems.push(`the run ended ${evidence.end}`);
  if (evidence.closedAfterMs > bound.closeMs)
    problems.push(`it closed after ${seconds(evidence.closedAfterMs)} (bound ${seconds(bound.closeMs)})`);
  if (!evidence.probe.ok) problems.push(`no write through DNS was taken: ${evidence.probe.detail}`);
  else if (evidence.probe.afterMs > bound.writableMs)
    problems.push(
      `a write through DNS was taken only after ${seconds(evidence.probe.afterMs)} (bound ${seconds(bound.writableMs)})`,
    );
  if (evidence.leftovers.length) problems.push(`left behind after gc: ${evidence.leftovers.join(', ')}`);
  return {
    judge: 'recovered',
    ok: problems.length === 0,
    detail: problems.length
      ? problems.join('; ')
      : `${evidence.end} after ${seconds(evidence.closedAfterMs)}, writable ${seconds(evidence.probe.afterMs)} later, nothing left behind`,
  };
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
