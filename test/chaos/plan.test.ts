/** The plans of `npm run chaos` (src/chaos/plan.ts): drawn from the seed alone, run by run, and the fault menu's errors. */
import { describe, expect, it } from 'vitest';
import { AIM_WINDOW_MS, parseFaultMenu, planRun, STRIKE_WINDOW_MS, type PlanOptions } from '../../src/chaos/plan.ts';

const options: PlanOptions = { menu: parseFaultMenu(undefined, false), leaseMs: 10_000, stackNodes: 2, riakNodes: 3 };

describe('chaos plans', () => {
  it('are the same for the same seed and run, so one run replays alone, and differ between runs', () => {
    expect(planRun(42, 7, options)).toEqual(planRun(42, 7, options));
    expect(planRun(42, 7, options)).not.toEqual(planRun(42, 8, options));
    expect(planRun(42, 7, options)).not.toEqual(planRun(43, 7, options));
  });

  it('mix switches and rollbacks, single and double faults, short faults and ones past the lease', () => {
    const plans = Array.from({ length: 400 }, (_, run) => planRun(1, run, options));
    const faults = plans.flatMap((p) => p.faults);
    expect(plans.filter((p) => p.action === 'rollback').length).toBeGreaterThan(80);
    expect(plans.filter((p) => p.faults.length === 2).length).toBeGreaterThan(40);
    expect(faults.filter((f) => f.forMs > options.leaseMs).length).toBeGreaterThan(60);
    expect(new Set(faults.map((f) => `${f.target}:${f.mode}`)).size).toBe(12);
    for (const plan of plans) {
      for (const fault of plan.faults) {
        expect(fault.atMs).toBeLessThanOrEqual(STRIKE_WINDOW_MS[plan.action]);
        expect(fault.node).toBeGreaterThanOrEqual(1);
        expect(fault.node).toBeLessThanOrEqual(2);
        expect(fault.forMs).toBeGreaterThanOrEqual(500);
        expect(fault.forMs).toBeLessThanOrEqual(options.leaseMs + 15_000);
      }
      expect(new Set(plan.faults.map((f) => f.target)).size).toBe(plan.faults.length);
    }
  });

  it("aim about a third of a switch's faults at the flip or the look right after it, none of a rollback's", () => {
    const plans = Array.from({ length: 400 }, (_, run) => planRun(1, run, options));
    const aimed = plans.flatMap((p) => p.faults.filter((f) => f.phase).map((f) => ({ ...f, action: p.action })));
    const switchFaults = plans.filter((p) => p.action === 'switch').flatMap((p) => p.faults).length;
    expect(aimed.length).toBeGreaterThan(switchFaults / 5);
    expect(aimed.length).toBeLessThan(switchFaults / 2);
    expect(new Set(aimed.map((f) => f.phase))).toEqual(new Set(['switching', 'verifying']));
    expect(aimed.every((f) => f.action === 'switch' && f.atMs <= AIM_WINDOW_MS)).toBe(true);
  });

  it('draw only from the menu given, with the mode it pins', () => {
    const menu = parseFaultMenu('worker:stop,riak', true);
    expect(menu).toEqual([{ target: 'worker', mode: 'stop' }, { target: 'riak' }]);
    const faults = Array.from({ length: 100 }, (_, run) => planRun(3, run, { ...options, menu })).flatMap(
      (p) => p.faults,
    );
    // A menu of one thing gives one fault per run.
    expect(
      Array.from({ length: 100 }, (_, run) => planRun(3, run, { ...options, menu: [{ target: 'dns' }] })).every(
        (p) => p.faults.length === 1,
      ),
    ).toBe(true);
    expect(faults.filter((f) => f.target === 'worker').every((f) => f.mode === 'stop')).toBe(true);
    expect(faults.filter((f) => f.target === 'riak').every((f) => f.node >= 1 && f.node <= 3)).toBe(true);
  });

  it('refuse a fault menu naming what is not a fault, with what is', () => {
    expect(() => parseFaultMenu('worker,disk', false)).toThrow(
      "--faults: 'disk' is not a fault; expected one of worker, temporal, node-old, node-new, dns, rabbitmq, optionally followed by :kill or :stop (riak needs --store riak)",
    );
    expect(() => parseFaultMenu('riak', false)).toThrow(/'riak' is not a fault.*riak needs --store riak/);
    expect(() => parseFaultMenu('dns:pause', false)).toThrow(
      "--faults: 'dns:pause' has mode 'pause'; expected kill or stop",
    );
  });
});
