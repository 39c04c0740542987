/**
 * The rules workflow code takes from outside workflows/ whose answers decide which commands a run
 * issues: which stacks it deletes, whether DNS already points back, the id and attributes of the
 * child switch a night starts. A replayed run must get the same answers it got when it ran, so
 * they are pinned like histories: test/fixtures/workflow-rules/<generation>.json holds each rule's
 * answers for the cases below, workflow-rules.test.ts checks every generation, and
 * test/fixtures/workflow-rules/record.ts writes a new one (never over an old one). To change a
 * rule, keep the old one for runs without a new patch, add the new one under another name here,
 * choose between them with patched(), and record a generation.
 */
import type { DnsRecordState, DnsTarget, StackDescription } from '../../src/cloud/ports.ts';
import { otherColour } from '../../src/cloud/ports.ts';
import { pointsTo } from '../../src/cloud/dns-target.ts';
import {
  forwardsEveryRequestTo,
  stackRoles,
  stacksToDelete,
  type KeepRules,
  type Observation,
  type ObservedState,
} from '../../src/switch/roles.ts';
import { colourOfStackName, stackName } from '../../src/switch/stack-name.ts';
import {
  rehearsalStartOptions,
  switchStartOptions,
  switchWorkflowId,
  type SwitchInput,
} from '../../src/switch/contract.ts';

/** Each rule with the cases it is pinned on: a name, and the answer as JSON. */
export type Rule = Array<{ case: string; answer: () => unknown }>;

function stack(name: string, day: number, status: StackDescription['status'] = 'ready'): StackDescription {
  return {
    name,
    env: 'test',
    colour: name.includes('green') ? 'green' : 'blue',
    workflowId: `switch-${name}`,
    status,
    rawStatus:
      status === 'ready' ? 'CREATE_COMPLETE' : status === 'failed' ? 'ROLLBACK_COMPLETE' : 'CREATE_IN_PROGRESS',
    createdAt: new Date(Date.UTC(2026, 0, day)).toISOString(),
    ...(status === 'ready'
      ? {
          outputs: {
            endpoint: `http://${name}`,
            adminUrl: `http://${name}`,
            nodes: [],
            dnsTarget: { kind: 'a', addresses: [`10.0.0.${day}`] },
          },
        }
      : {}),
  };
}

const STACKS = [
  stack('live-blue', 5),
  stack('prev-green', 4),
  stack('older-blue', 3),
  stack('failed-green', 6, 'failed'),
  stack('creating-blue', 7, 'creating'),
  stack('oldest-green', 1),
  stack('deleting-blue', 2, 'deleting'),
];
const KEEP: Array<[string, KeepRules]> = [
  ['tear-down keeping one', { live: 'live-blue', owned: ['live-blue'], previous: 'prev-green', keepStacks: 1 }],
  ['tear-down keeping none', { live: 'live-blue', owned: ['live-blue'], previous: 'prev-green', keepStacks: 0 }],
  [
    'tear-down keeping two, previous not ready',
    { live: 'live-blue', owned: ['live-blue'], previous: 'failed-green', keepStacks: 2 },
  ],
  ['clean-up at the start of a switch', { live: 'live-blue', owned: ['next-green'], keepStacks: STACKS.length }],
  ['clean-up with no live stack', { owned: ['creating-blue'], keepStacks: 1 }],
];

const A: DnsTarget = { kind: 'a', addresses: ['10.0.0.2', '10.0.0.1'] };
const ALIAS: DnsTarget = {
  kind: 'alias',
  dnsName: 'blue-alb.us-east-1.elb.amazonaws.com',
  hostedZoneId: 'Z35SXDOTRQ7X7K',
};
const RECORDS: Array<[string, DnsRecordState | null]> = [
  ['owned by the stack', { recordName: 'sync.test.', ttl: 30, stack: 'live-blue', target: A }],
  ['owned by another stack', { recordName: 'sync.test.', ttl: 30, stack: 'prev-green', target: A }],
  [
    'no ownership record, same addresses in another order',
    { recordName: 'sync.test.', ttl: 30, stack: '', target: { kind: 'a', addresses: ['10.0.0.1', '10.0.0.2'] } },
  ],
  [
    'no ownership record, alias as Route53 answers it',
    {
      recordName: 'sync.test.',
      ttl: 30,
      stack: '',
      target: { ...ALIAS, dnsName: `${ALIAS.dnsName}.`, hostedZoneId: '/hostedzone/Z35SXDOTRQ7X7K' },
    },
  ],
  ['no record', null],
];

const open = (draining = false): ObservedState => ({ fence: { mode: 'open', epoch: 1 }, draining, cursor: 'c1' });
const forwarding = (to: string, draining = false): ObservedState => ({
  fence: { mode: 'forwarding', epoch: 3, forwardTo: `http://${to}` },
  draining,
  cursor: 'c2',
});
const OWNED_BY_LIVE: DnsRecordState = {
  recordName: 'sync.test.',
  ttl: 30,
  stack: 'live-blue',
  target: { kind: 'a', addresses: ['10.0.0.5'] },
};
const LOOKS: Array<[string, Observation]> = [
  [
    'live open, previous drained',
    {
      record: OWNED_BY_LIVE,
      stacks: STACKS,
      states: { 'live-blue': open(), 'prev-green': forwarding('live-blue', true), 'older-blue': open(true) },
    },
  ],
  [
    'live forwards to the stack it left (a run died after its commit)',
    {
      record: OWNED_BY_LIVE,
      stacks: STACKS,
      states: { 'live-blue': forwarding('prev-green'), 'prev-green': open(true) },
    },
  ],
  [
    'two stacks forwarding to each other',
    {
      record: OWNED_BY_LIVE,
      stacks: STACKS,
      states: { 'live-blue': forwarding('prev-green'), 'prev-green': forwarding('live-blue') },
    },
  ],
  [
    'live silent, nothing drained',
    {
      record: OWNED_BY_LIVE,
      stacks: STACKS,
      states: { 'prev-green': open() },
      silent: { 'live-blue': 'ECONNREFUSED' },
    },
  ],
  [
    'no ownership record, target of prev-green',
    {
      record: { ...OWNED_BY_LIVE, stack: '', target: { kind: 'a', addresses: ['10.0.0.4'] } },
      stacks: STACKS,
      states: { 'older-blue': open(true) },
    },
  ],
  ['no record', { record: null, stacks: STACKS, states: { 'prev-green': open(true) } }],
];
const rolesOf = (seen: Observation) => {
  const { live, writer, previous, forwardsTo } = stackRoles(seen);
  return { live: live?.name ?? null, writer: writer?.name ?? null, previous: previous?.name ?? null, forwardsTo };
};

const INPUTS: Array<[string, SwitchInput]> = [
  ['a CI switch', { env: 'dev', backup: 'latest', trigger: 'ci', version: '2.0.0' }],
  [
    'a night, approval asked for, stack kept if it fails',
    {
      env: 'qa',
      backup: 'backups/qa-1',
      trigger: 'schedule',
      version: 'nightly',
      approval: 'manual',
      keepFailed: true,
    },
  ],
];

export const RULES: Record<string, Rule> = {
  stacksToDelete: KEEP.map(([name, rules]) => ({
    case: name,
    answer: () => stacksToDelete(STACKS, rules).map((s) => s.name),
  })),
  pointsTo: RECORDS.flatMap(([name, record]) => [
    {
      case: `${name}, asked about live-blue by address`,
      answer: () => pointsTo(record, { name: 'live-blue', dnsTarget: A }),
    },
    {
      case: `${name}, asked about live-blue by alias`,
      answer: () => pointsTo(record, { name: 'live-blue', dnsTarget: ALIAS }),
    },
  ]),
  stackRoles: LOOKS.map(([name, seen]) => ({ case: name, answer: () => rolesOf(seen) })),
  forwardsEveryRequestTo: [
    {
      case: 'forwarding to it',
      answer: () => forwardsEveryRequestTo({ mode: 'forwarding', forwardTo: 'http://live-blue' }, STACKS[0]!),
    },
    {
      case: 'forwarding elsewhere',
      answer: () => forwardsEveryRequestTo({ mode: 'forwarding', forwardTo: 'http://prev-green' }, STACKS[0]!),
    },
    { case: 'fenced', answer: () => forwardsEveryRequestTo({ mode: 'fenced' }, STACKS[0]!) },
    {
      case: 'a run before fencing tokens (no mode)',
      answer: () => forwardsEveryRequestTo({ forwardTo: 'http://live-blue' }, STACKS[0]!),
    },
  ],
  otherColour: [
    { case: 'blue', answer: () => otherColour('blue') },
    { case: 'green', answer: () => otherColour('green') },
  ],
  // The name a reset run finds the stack the first run created by.
  stackName: [{ case: 'green of dev', answer: () => stackName('dev', 'green', '0a1b2c3d') }],
  colourOfStackName: [
    'navcloud-dev-blue-0a1b2c3d',
    'navcloud-dev-green-seed0001',
    'a-stack-of-no-colour',
    undefined,
  ].map((name) => ({ case: name ?? 'no stack', answer: () => colourOfStackName(name) ?? null })),
  switchWorkflowId: [{ case: 'dev', answer: () => switchWorkflowId('dev') }],
  switchStartOptions: INPUTS.map(([name, input]) => ({ case: name, answer: () => switchStartOptions(input) })),
  rehearsalStartOptions: INPUTS.map(([name, input]) => ({ case: name, answer: () => rehearsalStartOptions(input) })),
};

/**
 * What workflow code imports at run time from outside workflows/ and does not pin, with why: it
 * only shapes activity inputs, the status query, the report or a notification's text, none of
 * which a replay compares.
 */
export const NOT_DECIDING_COMMANDS: Record<string, string> = {
  approveCommandFor: 'the text of the awaiting-approval notification',
  statusQuery: 'the name of a query handler (a query is no command)',
  approveUpdate: 'the name of an update handler; its acceptance is recorded in the history, not decided again',
  abortUpdate: 'the name of an update handler; its acceptance is recorded in the history, not decided again',
  DEFAULT_FENCE_LEASE_SECONDS: 'an activity input of runs planned before leases',
  DEFAULT_MAX_WRITE_PAUSE_SECONDS: 'an activity input of runs planned before the write-pause ceiling',
  searchAttributes: "the keys of the run's own search attributes (values of its upserts)",
  switchReport: 'the report, an activity input',
};

/** Every rule's answers, as a generation file holds them. */
export function answers(): Record<string, Record<string, unknown>> {
  return Object.fromEntries(
    Object.entries(RULES).map(([rule, cases]) => [
      rule,
      Object.fromEntries(cases.map((c) => [c.case, JSON.parse(JSON.stringify(c.answer()))])),
    ]),
  );
}
