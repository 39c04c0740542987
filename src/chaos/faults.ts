/**
 * The fault agent of `npm run chaos`: at its moment, a fault SIGKILLs a process and starts it
 * again `forMs` later (what a supervisor or an Auto Scaling group does), or freezes it with
 * SIGSTOP and thaws it with SIGCONT `forMs` later. Every fault heals, whatever happened to the
 * run meanwhile, so the next run starts from a whole environment.
 */
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { signalGroup } from '../cloud/local/processes.ts';
import type { LocalStackProvisioner } from '../cloud/local/stack-provisioner.ts';
import type { LocalEnvironment } from '../local/environment.ts';
import type { AimedPhase, FaultPlan } from './plan.ts';

const run = promisify(execFile);

/** A node of the Riak cluster, as `riakctl` runs it. */
export interface RiakControl {
  kill(node: number): Promise<void>;
  start(node: number): Promise<void>;
  /** The node's Erlang VM (beam.smp) processes: what SIGSTOP freezes. */
  beamPids(node: number): number[];
}

/**
 * `riakctl kill N` / `riakctl start-node N` (/work/shared/riak/riakctl, or `--riakctl`); a node's VM
 * is the process running beam.smp whose command line names the node's folder under RIAK_HOME (its
 * argv[0] is the node's `bin/riak`).
 */
export function riakctl(
  path: string,
  home = process.env.RIAK_HOME || '/tmp/switchyard-riak',
  procDir = '/proc',
): RiakControl {
  const call = async (args: string[]) => {
    // A start waits for riak_kv (riakctl bounds that at 300 s).
    await run(path, args, { timeout: 360_000 });
  };
  return {
    kill: (node) => call(['kill', String(node)]),
    start: (node) => call(['start-node', String(node)]),
    beamPids: (node) =>
      processesWhose(
        procDir,
        (comm, argv) => comm === 'beam.smp' && argv.some((a) => a.includes(`${home}/dev${node}/`)),
      ),
  };
}

function processesWhose(procDir: string, match: (comm: string, argv: string[]) => boolean): number[] {
  return readdirSync(procDir)
    .filter((entry) => /^\d+$/.test(entry))
    .filter((pid) => {
      try {
        return match(
          readFileSync(`${procDir}/${pid}/comm`, 'utf8').trim(),
          readFileSync(`${procDir}/${pid}/cmdline`, 'utf8').split('\0'),
        );
      } catch {
        return false; // gone meanwhile
      }
    })
    .map(Number);
}

/** What the agent acts on. */
export interface FaultWorld {
  processes: LocalEnvironment['processes'];
  stacks: LocalStackProvisioner;
  /** The stack a node fault hits, looked up when it strikes: undefined while it does not exist. */
  stackOf(which: 'old' | 'new'): Promise<string | undefined>;
  /** Resolves with the time the run's workflow was first seen in `phase`, or undefined if it closed without. */
  phaseBegan(phase: AimedPhase): Promise<number | undefined>;
  riak?: RiakControl;
}

/** What became of one planned fault. */
export interface Strike {
  fault: FaultPlan;
  struck: boolean;
  /** What was hit, or why nothing was. */
  detail: string;
}

/** One thing a fault can hit: its processes (for SIGSTOP), its crash and its restart. */
interface Subject {
  name: string;
  pids(): number[];
  kill(): Promise<void>;
  restart(): Promise<void>;
}

/**
 * Waits for the fault's moment (after `startedAt`, or after its phase began), strikes, waits
 * `forMs` and heals. A fault whose moment comes after `closed` resolved (the run is over) is not
 * struck; a node fault waits for its stack to exist, up to the same point.
 */
export async function runFault(
  fault: FaultPlan,
  world: FaultWorld,
  startedAt: number,
  closed: Promise<unknown>,
): Promise<Strike> {
  let over = false;
  void closed.then(
    () => (over = true),
    () => (over = true),
  );
  const from = fault.phase ? await world.phaseBegan(fault.phase) : startedAt;
  if (from === undefined) return { fault, struck: false, detail: `the run was over before it reached ${fault.phase}` };
  await sleep(Math.max(0, from + fault.atMs - Date.now()));
  let subject: Subject | undefined;
  while (!over && !(subject = await subjectOf(fault, world))) await sleep(200);
  if (!subject)
    return { fault, struck: false, detail: over ? 'the run was over before it struck' : 'nothing to strike' };
  const struckAt = Date.now();
  if (fault.mode === 'stop') {
    const pids = subject.pids();
    if (!pids.length) return { fault, struck: false, detail: `${subject.name} was not running` };
    for (const pid of pids) signalGroup(pid, 'SIGSTOP');
    await sleep(fault.forMs);
    for (const pid of pids) signalGroup(pid, 'SIGCONT');
    return { fault, struck: true, detail: `${subject.name} (pid ${pids.join(', ')}) frozen` };
  }
  await subject.kill();
  await sleep(fault.forMs);
  await subject.restart();
  // Starting again takes its own time (a Node process with tsx, RabbitMQ's boot): the outage is this long.
  return {
    fault,
    struck: true,
    detail: `${subject.name} killed and started again, serving ${((Date.now() - struckAt) / 1000).toFixed(1)} s after the kill`,
  };
}

async function subjectOf(fault: FaultPlan, world: FaultWorld): Promise<Subject | undefined> {
  switch (fault.target) {
    case 'worker':
    case 'temporal':
    case 'dns':
    case 'rabbitmq': {
      const process = world.processes[fault.target];
      return {
        name: fault.target,
        pids: () => [process.pid()].filter((p): p is number => p !== undefined),
        kill: () => process.kill(),
        restart: () => process.start(),
      };
    }
    case 'node-old':
    case 'node-new': {
      const stack = await world.stackOf(fault.target === 'node-old' ? 'old' : 'new');
      const node = stack && world.stacks.nodeProcesses(stack)[fault.node - 1];
      if (!stack || !node) return undefined;
      const pid = () => world.stacks.nodeProcesses(stack)[fault.node - 1]?.pid;
      return {
        name: node.id,
        pids: () => [pid()].filter((p): p is number => p !== undefined),
        kill: async () => {
          const running = pid();
          if (running === undefined) return;
          signalGroup(running, 'SIGKILL');
          while (pid() !== undefined) await sleep(20);
        },
        // An instance group replaces a dead node, unless the stack went away meanwhile (even while this looks).
        restart: async () => {
          const status = (await world.stacks.describe(stack))?.status;
          if (status !== 'ready' && status !== 'creating') return;
          await world.stacks.restartNode(stack, node.id).catch(async (err: unknown) => {
            if (await world.stacks.describe(stack)) throw err;
          });
        },
      };
    }
    case 'riak': {
      const riak = world.riak;
      if (!riak) throw new Error('a riak fault needs --store riak');
      return {
        name: `riak dev${fault.node}`,
        pids: () => riak.beamPids(fault.node),
        kill: () => riak.kill(fault.node),
        restart: () => riak.start(fault.node),
      };
    }
  }
}
