/**
 * What each run of `npm run chaos` does, drawn from the seed: a switch or a rollback, and one fault
 * (two now and then) — which process, how (SIGKILL, or SIGSTOP then SIGCONT), when and for how
 * long. Run k of seed S is drawn from its own stream (the seed's generator jumped k + 1 times), so
 * `--seed S --run k` replays the same plan alone.
 */
import { uniformFloat64 } from 'pure-rand/distribution/uniformFloat64';
import { uniformInt } from 'pure-rand/distribution/uniformInt';
import { xoroshiro128plus } from 'pure-rand/generator/xoroshiro128plus';

/**
 * What a fault hits. `node-old` is a sync node of the stack clients were on when the run began,
 * `node-new` one of the stack the run moves them to (the new stack of a switch, the previous
 * stack of a rollback); `riak` a node of the Riak cluster (`--store riak` only).
 */
export const FAULT_TARGETS = ['worker', 'temporal', 'node-old', 'node-new', 'dns', 'rabbitmq', 'riak'] as const;
export type FaultTarget = (typeof FAULT_TARGETS)[number];

/** `kill`: SIGKILL, and the process is started again `forMs` later; `stop`: SIGSTOP, SIGCONT `forMs` later. */
export const FAULT_MODES = ['kill', 'stop'] as const;
export type FaultMode = (typeof FAULT_MODES)[number];

/** One entry of the menu faults are drawn from: a target, and the one mode it is limited to, if any. */
export interface FaultChoice {
  target: FaultTarget;
  mode?: FaultMode;
}

/** Phases of a switch a fault may be aimed at: the flip (fence held, forward, DNS) and the look at the new stack right after it. */
export const AIMED_PHASES = ['switching', 'verifying'] as const;
export type AimedPhase = (typeof AIMED_PHASES)[number];

export interface FaultPlan {
  target: FaultTarget;
  mode: FaultMode;
  /** When it strikes: after the run's workflow started, or after it began `phase`. */
  atMs: number;
  /** A third of a switch's faults aim at a phase: a moment drawn over the whole run rarely lands in the flip's second or two. */
  phase?: AimedPhase;
  /** How long the process stays down or frozen. */
  forMs: number;
  /** Which node (1-based) for node-old, node-new and riak. */
  node: number;
}

export type RunAction = 'switch' | 'rollback';

export interface RunPlan {
  seed: number;
  run: number;
  action: RunAction;
  faults: FaultPlan[];
}

export interface PlanOptions {
  menu: FaultChoice[];
  /** The environment's fence lease: a quarter of the faults last longer than it. */
  leaseMs: number;
  /** Nodes per stack, and in the Riak cluster. */
  stackNodes: number;
  riakNodes: number;
}

/** Faults strike within about a fault-free run's length on the local profile (under client load a switch took 15-29 s as the machine was more or less busy, a rollback 2-5 s). */
export const STRIKE_WINDOW_MS: Record<RunAction, number> = { switch: 20_000, rollback: 2_000 };
const ROLLBACK_SHARE = 0.3;
const DOUBLE_FAULT_SHARE = 0.2;
const PAST_LEASE_SHARE = 0.25;
const AIMED_SHARE = 1 / 3;
/** An aimed fault strikes within this long of its phase's start. */
export const AIM_WINDOW_MS = 1_500;

export function planRun(seed: number, run: number, options: PlanOptions): RunPlan {
  if (!options.menu.length) throw new Error('the fault menu is empty');
  const rng = xoroshiro128plus(seed);
  for (let k = 0; k <= run; k++) rng.jump();
  // Aiming draws from a stream of its own, so the rest of a plan is what it was before faults were aimed.
  const aim = xoroshiro128plus(seed ^ 0x5eed);
  for (let k = 0; k <= run; k++) aim.jump();
  const chance = (share: number) => uniformFloat64(rng) < share;
  const between = (from: number, to: number) => uniformInt(rng, Math.round(from), Math.round(to));
  const action: RunAction = chance(ROLLBACK_SHARE) ? 'rollback' : 'switch';
  const faults: FaultPlan[] = [];
  // Two faults of one run hit two different things: a process cannot be started twice.
  for (let count = chance(DOUBLE_FAULT_SHARE) ? 2 : 1; count > 0; count--) {
    const menu = options.menu.filter((c) => !faults.some((f) => f.target === c.target));
    if (!menu.length) break;
    const choice = menu[between(0, menu.length - 1)]!;
    const mode = choice.mode ?? FAULT_MODES[between(0, 1)]!;
    const forMs = chance(PAST_LEASE_SHARE)
      ? between(options.leaseMs + 1_000, options.leaseMs + 15_000)
      : between(500, options.leaseMs / 2);
    const node = between(1, choice.target === 'riak' ? options.riakNodes : options.stackNodes);
    const atMs = between(0, STRIKE_WINDOW_MS[action]);
    const phase =
      action === 'switch' && uniformFloat64(aim) < AIMED_SHARE
        ? AIMED_PHASES[uniformInt(aim, 0, AIMED_PHASES.length - 1)]!
        : undefined;
    faults.push(
      phase
        ? { target: choice.target, mode, atMs: uniformInt(aim, 0, AIM_WINDOW_MS), phase, forMs, node }
        : { target: choice.target, mode, atMs, forMs, node },
    );
  }
  return { seed, run, action, faults };
}

/**
 * `--faults worker,node-old:stop,…`: the menu, each entry a target with an optional `:kill` or
 * `:stop`. Riak is on the menu only with the Riak store.
 */
export function parseFaultMenu(text: string | undefined, riak: boolean): FaultChoice[] {
  const targets = FAULT_TARGETS.filter((t) => riak || t !== 'riak');
  if (text === undefined) return targets.map((target) => ({ target }));
  return text
    .split(',')
    .map((entry) => entry.trim())
    .filter(Boolean)
    .map((entry) => {
      const [target, mode, extra] = entry.split(':');
      if (!(targets as readonly string[]).includes(target ?? '') || extra !== undefined) {
        throw new Error(
          `--faults: '${entry}' is not a fault; expected one of ${targets.join(', ')}, optionally followed by :kill or :stop${riak ? '' : ' (riak needs --store riak)'}`,
        );
      }
      if (mode !== undefined && !(FAULT_MODES as readonly string[]).includes(mode)) {
        throw new Error(`--faults: '${entry}' has mode '${mode}'; expected kill or stop`);
      }
      return { target: target as FaultTarget, ...(mode ? { mode: mode as FaultMode } : {}) };
    });
}

/** `worker:stop 12.3s@8.1s` (or `@switching+0.4s`): the fault, for how long, and when it strikes after the run's (or the phase's) start. */
export function describeFault(fault: FaultPlan): string {
  const node = fault.target.startsWith('node-') || fault.target === 'riak' ? `#${fault.node}` : '';
  const at = fault.phase ? `${fault.phase}+${(fault.atMs / 1000).toFixed(1)}s` : `${(fault.atMs / 1000).toFixed(1)}s`;
  return `${fault.target}${node}:${fault.mode} ${(fault.forMs / 1000).toFixed(1)}s@${at}`;
}
