/**
 * The fault explorer: stackSwitch and rollback on the time-skipping server over the fake world,
 * with one fault at every activity call of every base run and of every kind, the world's own
 * faults (DNS refused or never in sync, a partial fence, AWS-shaped outputs), and a seeded sample
 * of double faults; the invariants of docs/invariants.md are checked after every step of the world
 * and at the end. EXPLORER_SEED replays a double-fault sample; EXPLORER_ONLY runs the schedules
 * whose name contains it (e.g. `switch@7:hang`).
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Lane, scheduleName, type FaultKind, type Found, type Outcome, type Schedule } from './explorer.ts';
import { BASES, SCENARIOS, doubleFaults, singleFaults } from './schedules.ts';

/** Schedules wait on the servers more than on the CPU: several lanes keep both cores busy. */
const LANES = 8;
const DOUBLE_FAULTS = 10;
/** A fixed sample by default, so `npm test` explores the same schedules every time; EXPLORER_SEED draws another. */
const seed = Number(process.env.EXPLORER_SEED ?? 20261128);
const only = process.env.EXPLORER_ONLY;

let lanes: Lane[] = [];
beforeAll(async () => {
  lanes = await Promise.all(Array.from({ length: LANES }, () => Lane.start()));
}, 120_000);
afterAll(async () => {
  await Promise.all(lanes.map((lane) => lane.stop()));
});

/** Runs the schedules on all lanes, each lane taking the next one when it is free. */
async function explore(schedules: Schedule[]): Promise<Outcome[]> {
  const outcomes: Outcome[] = [];
  const started = Date.now();
  let next = 0;
  await Promise.all(
    lanes.map(async (lane) => {
      while (next < schedules.length) {
        const schedule = schedules[next++]!;
        outcomes.push(await lane.run(schedule));
        // Progress, so that a run past the test's bound shows how far it got.
        if (outcomes.length % 50 === 0)
          console.log(
            `fault explorer: ${outcomes.length} of ${schedules.length} schedules in ${Math.round((Date.now() - started) / 1000)} s`,
          );
      }
    }),
  );
  return outcomes;
}

/** A violation found but not fixed yet: the finding it is, where it shows, and what it breaks. */
interface KnownViolation {
  /** The finding of issue 18 it is, and who fixes it. */
  finding: string;
  base: string;
  /** Faults that set it off (any of these kinds at any of these calls); absent: the base without a fault. */
  faults?: { activities: string[]; kinds: FaultKind[] };
  invariants: Array<Found['invariant']>;
}

/**
 * KNOWN VIOLATIONS, still found on the workflows of this branch and reported to the lead — not
 * excused by weakening any invariant: a schedule is let through only when it is the base listed
 * (without a fault, or with one of the faults listed) and every invariant it breaks is listed with
 * it. Delete an entry once it is fixed.
 *
 * Before fencing tokens the rough world found 13 of 319 schedules breaking an invariant: findings
 * 2 (from-refuses-admin, rollback-from-refuses-admin, switch-verify-fails/rollback/
 * switch-back-refused with a paused hand-over), 3 (switch-back-refused with a stale unfence),
 * 4 (clock-skew, clock-step), 7 (rollback-via-forwarder), 9 (caught-write-overtaken) and 1
 * (caught-write-gap, closed by import carrying the export's end line). None is left.
 */
const KNOWN_VIOLATIONS: KnownViolation[] = [];

function isKnown(schedule: Schedule, outcome: Outcome, calls: string[]): boolean {
  return KNOWN_VIOLATIONS.some(
    (known) =>
      known.base === schedule.base.name &&
      (known.faults === undefined
        ? schedule.faults.length === 0
        : schedule.faults.some(
            (f) => known.faults!.kinds.includes(f.kind) && known.faults!.activities.includes(calls[f.call] ?? ''),
          )) &&
      outcome.violations.every((v) => known.invariants.includes(v.invariant)),
  );
}

const describeOutcome = (o: Outcome) =>
  `${o.schedule} (ended: ${o.result.split('\n')[0]})\n${o.violations.map((v) => `    ${v.invariant}: ${v.message}\n      after: ${v.step}`).join('\n')}`;

it('keeps I1–I6 under every single fault and a seeded sample of double faults', async () => {
  const started = Date.now();
  const selected = (schedules: Schedule[]) =>
    only ? schedules.filter((s) => scheduleName(s).includes(only)) : schedules;

  // Fault-free runs first: they say which activity calls each base makes.
  const recorded = await explore([...BASES, ...SCENARIOS].map((base) => ({ base, faults: [] })));
  const callsOf = new Map(recorded.map((o) => [o.schedule, o.calls]));
  for (const base of BASES)
    console.log(
      `fault explorer: ${base.name} calls ${callsOf
        .get(base.name)
        ?.map((c, i) => `${i}:${c}`)
        .join(' ')}`,
    );
  const singles = BASES.flatMap((base) => singleFaults(base, callsOf.get(base.name) ?? []));
  const doubles = doubleFaults(
    BASES.map((base) => ({ base, calls: callsOf.get(base.name) ?? [] })),
    DOUBLE_FAULTS,
    seed,
  );
  const faulted = selected([...singles, ...doubles]);
  const outcomes = [
    ...(only ? recorded.filter((o) => o.schedule.includes(only)) : recorded),
    ...(await explore(faulted)),
  ];

  const scheduleOf = new Map(
    [...[...BASES, ...SCENARIOS].map((base) => ({ base, faults: [] as Schedule['faults'] })), ...faulted].map((s) => [
      scheduleName(s),
      s,
    ]),
  );
  const broken = outcomes.filter((o) => o.violations.length > 0 || o.result.startsWith('the schedule itself broke'));
  const known = broken.filter((o) => {
    const schedule = scheduleOf.get(o.schedule);
    return schedule !== undefined && isKnown(schedule, o, callsOf.get(schedule.base.name) ?? []);
  });
  const failing = broken.filter((o) => !known.includes(o));
  if (known.length) {
    console.log(
      `fault explorer: ${known.length} schedules break an invariant in a way listed in KNOWN_VIOLATIONS (not fixed yet):\n` +
        known.map(describeOutcome).join('\n'),
    );
  }
  const byInvariant = new Map<string, number>();
  for (const o of failing)
    for (const v of o.violations) byInvariant.set(v.invariant, (byInvariant.get(v.invariant) ?? 0) + 1);
  console.log(
    `fault explorer: ${outcomes.length} schedules explored (${recorded.length} fault-free, ${selected(singles).length} single faults, ` +
      `${selected(doubles).length} double faults, seed ${seed}) in ${Math.round((Date.now() - started) / 1000)} s; ` +
      `${failing.length} broke an invariant${failing.length ? ` (${[...byInvariant].map(([i, n]) => `${i}: ${n}`).join(', ')})` : ''}` +
      `${known.length ? `, and ${known.length} more as listed in KNOWN_VIOLATIONS` : ''}`,
  );
  if (failing.length) {
    console.log(
      `fault explorer: violations (seed ${seed}; rerun one with EXPLORER_SEED=${seed} EXPLORER_ONLY='<schedule>'):\n` +
        failing.map((o) => `${describeOutcome(o)}\n    world: ${o.world.join(' | ')}`).join('\n'),
    );
  }
  // The whole finding in the assertion: CI shows the failed assertion when it cuts the log above.
  expect(failing.map(describeOutcome), `seed ${seed}: schedules breaking an invariant`).toEqual([]);
}, 600_000);
