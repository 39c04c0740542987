/**
 * What the fault explorer explores: the base runs (scenarios of the world), the single faults at
 * every activity call of each, and a seeded sample of double faults.
 */
import type { ExportItemLine } from '../../src/navcloud/protocol.ts';
import { seedStackName, type FakeWorld } from '../support/fake-ports.ts';
import {
  ADMIN_CALLS,
  FAULT_KINDS,
  REQUEST_KINDS,
  type Base,
  type Fault,
  type FaultKind,
  type Schedule,
} from './explorer.ts';
import { fenceAsIs, forwardAsIs } from '../support/fence.ts';

/** The live stack every scenario starts from is blue, so the new stack is green. */
const NEW_STACK = 'green';
const LEASE_MS = 60_000;
const verifyFails = { probe: { stack: NEW_STACK, message: 'new stack unhealthy' } } as const;

export const BASES: Base[] = [
  { name: 'switch', flow: 'switch', expected: 'switched' },
  {
    name: 'switch-verify-fails',
    flow: 'switch',
    faultsFrom: 'probeStack',
    failures: verifyFails,
    expected: 'rolled-back',
  },
  {
    name: 'switch-smoke-fails',
    flow: 'switch',
    faultsFrom: 'smokeTest',
    failures: { smoke: { message: 'no heartbeat' } },
    expected: 'failed',
  },
  { name: 'rollback', flow: 'rollback', expected: 'rolled-back' },
  // DNS refuses to point back, so the writer goes back to the new stack: explored for late and stale requests.
  {
    name: 'switch-back-refused',
    flow: 'switch',
    faultsFrom: 'readDns',
    requestFaultsOnly: true,
    failures: { ...verifyFails, 'dns.switch': { stack: 'blue', message: 'InvalidChangeBatch: refused' } },
  },
];

/** Scenarios of the world explored without an activity fault of their own. */
export const SCENARIOS: Base[] = [
  { name: 'dns-refused', flow: 'switch', failures: { 'dns.switch': { message: 'InvalidChangeBatch: refused' } } },
  {
    name: 'dns-back-refused',
    flow: 'switch',
    failures: { ...verifyFails, 'dns.switch': { stack: 'blue', message: 'InvalidChangeBatch: refused' } },
  },
  {
    name: 'dns-never-in-sync',
    flow: 'switch',
    failures: { 'dns.waitInSync': { message: 'change never reached INSYNC' } },
  },
  {
    name: 'dns-back-never-in-sync',
    flow: 'switch',
    failures: { ...verifyFails, 'dns.waitInSync': { after: 1, message: 'change never reached INSYNC' } },
  },
  {
    name: 'rollback-dns-refused',
    flow: 'rollback',
    failures: { 'dns.switch': { message: 'InvalidChangeBatch: refused' } },
  },
  { name: 'partial-fence', flow: 'switch', failures: { 'admin.fence.partial': { times: 1, retryable: true } } },
  { name: 'partial-fence-for-good', flow: 'switch', failures: { 'admin.fence.partial': { retryable: true } } },
  {
    name: 'new-stack-unreachable',
    flow: 'switch',
    failures: {
      probe: { stack: NEW_STACK },
      'admin.fence': { stack: NEW_STACK, retryable: true, message: 'connection refused' },
    },
  },
  { name: 'aws-shaped', flow: 'switch', awsShaped: true, setup: awsShapedLive },
  {
    name: 'aws-shaped-verify-fails',
    flow: 'switch',
    awsShaped: true,
    setup: awsShapedLive,
    failures: { probe: { stack: NEW_STACK } },
  },
  { name: 'aws-shaped-rollback', flow: 'rollback', awsShaped: true, setup: awsShapedLive },
  // The rough world: nodes with clocks of their own, writes caught by a fence, a stack that stops answering.
  {
    name: 'clock-step',
    flow: 'switch',
    expected: 'switched',
    setup: (world) => void (world.state.clockStepOnFence = { node: 1, byMs: LEASE_MS + 1_000 }),
  },
  {
    name: 'clock-skew',
    flow: 'switch',
    failures: verifyFails,
    expected: 'rolled-back',
    setup: (world) => void (world.state.clockSkewMs = [0, 20_000]),
  },
  {
    name: 'caught-write-overtaken',
    flow: 'switch',
    expected: 'switched',
    setup: (world) => void (world.state.inFlightAtFence = 'overtaken'),
  },
  {
    name: 'caught-write-undone',
    flow: 'switch',
    expected: 'switched',
    setup: (world) => void (world.state.inFlightAtFence = 'undone'),
  },
  {
    // Its nodes cannot be asked to settle: the undo lands past the copy, and the commit is refused as behind.
    name: 'caught-write-undone-unsettled',
    flow: 'switch',
    expected: 'switched',
    failures: { 'admin.settled': { message: 'connection refused' } },
    setup: (world) => void (world.state.inFlightAtFence = 'undone'),
  },
  {
    name: 'caught-write-gap',
    flow: 'switch',
    failures: verifyFails,
    expected: 'rolled-back',
    setup: (world) => void (world.state.inFlightAtFence = 'gap'),
  },
  {
    name: 'from-refuses-admin',
    flow: 'switch',
    failures: verifyFails,
    expected: 'rolled-back',
    setup: (world) => void (world.state.partition = { stack: NEW_STACK, after: '^unfence .*-blue-', requests: 12 }),
  },
  {
    name: 'rollback-from-refuses-admin',
    flow: 'rollback',
    expected: 'rolled-back',
    setup: (world) => void (world.state.partition = { stack: NEW_STACK, after: '^unfence .*-blue-', requests: 12 }),
  },
  {
    name: 'rollback-via-forwarder',
    flow: 'rollback',
    alone: true,
    expected: 'rolled-back',
    setup: committedNotSwitched,
  },
];

/** The live stack serves after an update that rolled back: healthy, but not CREATE_COMPLETE. */
function awsShapedLive(world: FakeWorld, env: string): void {
  const live = world.stack(seedStackName(env));
  live.description = { ...live.description, rawStatus: 'UPDATE_ROLLBACK_COMPLETE' };
}

/** A switch died after its commit: blue, which DNS names, forwards to green, which holds every write. */
async function committedNotSwitched(world: FakeWorld, env: string): Promise<void> {
  const blue = seedStackName(env);
  const green = `navcloud-${env}-green-commit01`;
  world.addStack(green, 'green', { env });
  const blueAdmin = world.admin(`fake://${blue}`);
  await fenceAsIs(blueAdmin, LEASE_MS / 1000);
  const lines: ExportItemLine[] = [];
  for await (const line of blueAdmin.exportSince(undefined)) if (line.kind === 'item') lines.push(line);
  await world.admin(`fake://${green}`).importLines(lines);
  await forwardAsIs(blueAdmin, world.stack(green).description.outputs!.endpoint);
}

/** Kinds of fault each call of a base is explored with: a dead run only where it leaves the most behind, request faults where a call changes a stack. */
export function kindsFor(base: Base, call: string): readonly FaultKind[] {
  const callKinds = FAULT_KINDS.filter(
    (k) => !REQUEST_KINDS.includes(k) && (k !== 'terminate' || base.name === 'switch' || base.name === 'rollback'),
  );
  const requestKinds = ADMIN_CALLS.has(call) ? REQUEST_KINDS : [];
  return base.requestFaultsOnly ? requestKinds : [...callKinds, ...requestKinds];
}

/** The first call a base is faulted at. */
export function firstFaulted(base: Base, calls: string[]): number {
  return base.faultsFrom ? Math.max(0, calls.indexOf(base.faultsFrom)) : 0;
}

export function singleFaults(base: Base, calls: string[]): Schedule[] {
  const schedules: Schedule[] = [];
  for (let call = firstFaulted(base, calls); call < calls.length; call += 1) {
    for (const kind of kindsFor(base, calls[call]!)) schedules.push({ base, faults: [{ call, kind }] });
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
    const kinds = kindsFor(base, calls[first]!).filter((k) => k !== 'terminate');
    const secondKinds = kindsFor(base, calls[second]!);
    if (kinds.length === 0 || secondKinds.length === 0) continue;
    const faults: Fault[] = [
      { call: first, kind: pick(kinds) },
      { call: second, kind: pick(secondKinds) },
    ];
    schedules.push({ base, faults });
  }
  return schedules;
}
