/**
 * What the fault explorer explores: the base runs (scenarios of the world), the single faults at
 * every activity call of each, and a seeded sample of double faults.
 */
import { seedStackName } from '../support/fake-ports.ts';
import { FAULT_KINDS, type Base, type Fault, type FaultKind, type Schedule } from './explorer.ts';

/** The live stack every scenario starts from is blue, so the new stack is green. */
const NEW_STACK = 'green';

export const BASES: Base[] = [
  { name: 'switch', flow: 'switch' },
  { name: 'switch-verify-fails', flow: 'switch', faultsFrom: 'probeStack', failures: { probe: { stack: NEW_STACK, message: 'new stack unhealthy' } } },
  { name: 'switch-smoke-fails', flow: 'switch', faultsFrom: 'smokeTest', failures: { smoke: { message: 'no heartbeat' } } },
  { name: 'rollback', flow: 'rollback' },
];

/** Scenarios of the world explored without an activity fault of their own. */
export const SCENARIOS: Base[] = [
  { name: 'dns-refused', flow: 'switch', failures: { 'dns.switch': { message: 'InvalidChangeBatch: refused' } } },
  {
    name: 'dns-back-refused', flow: 'switch',
    failures: { probe: { stack: NEW_STACK, message: 'new stack unhealthy' }, 'dns.switch': { stack: 'blue', message: 'InvalidChangeBatch: refused' } },
  },
  { name: 'dns-never-in-sync', flow: 'switch', failures: { 'dns.waitInSync': { message: 'change never reached INSYNC' } } },
  {
    name: 'dns-back-never-in-sync', flow: 'switch',
    failures: { probe: { stack: NEW_STACK, message: 'new stack unhealthy' }, 'dns.waitInSync': { after: 1, message: 'change never reached INSYNC' } },
  },
  { name: 'rollback-dns-refused', flow: 'rollback', failures: { 'dns.switch': { message: 'InvalidChangeBatch: refused' } } },
  { name: 'partial-fence', flow: 'switch', failures: { 'admin.fence.partial': { times: 1, retryable: true } } },
  { name: 'partial-fence-for-good', flow: 'switch', failures: { 'admin.fence.partial': { retryable: true } } },
  { name: 'new-stack-unreachable', flow: 'switch', failures: { probe: { stack: NEW_STACK }, 'admin.fence': { stack: NEW_STACK, retryable: true, message: 'connection refused' } } },
  { name: 'aws-shaped', flow: 'switch', awsShaped: true, setup: awsShapedLive },
  { name: 'aws-shaped-verify-fails', flow: 'switch', awsShaped: true, setup: awsShapedLive, failures: { probe: { stack: NEW_STACK } } },
  { name: 'aws-shaped-rollback', flow: 'rollback', awsShaped: true, setup: awsShapedLive },
];

/** The live stack serves after an update that rolled back: healthy, but not CREATE_COMPLETE. */
function awsShapedLive(world: import('../support/fake-ports.ts').FakeWorld, env: string): void {
  const live = world.stack(seedStackName(env));
  live.description = { ...live.description, rawStatus: 'UPDATE_ROLLBACK_COMPLETE' };
}

/** Which kinds of fault each base is explored with: a dead run only where it leaves the most behind. */
export function kindsFor(base: Base): readonly FaultKind[] {
  return base.name === 'switch' || base.name === 'rollback' ? FAULT_KINDS : FAULT_KINDS.filter((k) => k !== 'terminate');
}

/** The first call a base is faulted at. */
export function firstFaulted(base: Base, calls: string[]): number {
  return base.faultsFrom ? Math.max(0, calls.indexOf(base.faultsFrom)) : 0;
}

export function singleFaults(base: Base, calls: string[]): Schedule[] {
  const schedules: Schedule[] = [];
  for (let call = firstFaulted(base, calls); call < calls.length; call += 1) {
    for (const kind of kindsFor(base)) schedules.push({ base, faults: [{ call, kind }] });
  }
  return schedules;
}

/** mulberry32: a small seeded generator, so a sample is the same for the same seed. */
export function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `count` schedules of two faults at two different calls of one base, drawn with `seed`. */
export function doubleFaults(bases: Array<{ base: Base; calls: string[] }>, count: number, seed: number): Schedule[] {
  const next = random(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)]!;
  const schedules: Schedule[] = [];
  for (let i = 0; i < count; i += 1) {
    const { base, calls } = pick(bases);
    const from = firstFaulted(base, calls);
    if (calls.length - from < 2) continue;
    const first = from + Math.floor(next() * (calls.length - from - 1));
    const second = first + 1 + Math.floor(next() * (calls.length - first - 1));
    // A terminated run makes no further calls: only the later fault may end it.
    const kinds = kindsFor(base).filter((k) => k !== 'terminate');
    const faults: Fault[] = [{ call: first, kind: pick(kinds) }, { call: second, kind: pick(kindsFor(base)) }];
    schedules.push({ base, faults });
  }
  return schedules;
}
