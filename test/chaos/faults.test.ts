/**
 * The fault agent (src/chaos/faults.ts) against stand-ins for what it must not touch here: a fake
 * riakctl that records its calls, and a process that looks like a Riak node's Erlang VM. The real
 * processes of the local profile are struck by the short mode (test/chaos/short.test.ts).
 */
import { spawn } from 'node:child_process';
import { chmodSync, copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { riakctl, runFault, type FaultWorld } from '../../src/chaos/faults.ts';
import type { FaultPlan } from '../../src/chaos/plan.ts';
import { tempDir } from '../support/temp-dir.ts';

/** A world with only a Riak in it; the other targets are not reached by these faults. */
function riakWorld(script: string, home: string): FaultWorld {
  return { riak: riakctl(script, home), stackOf: async () => undefined } as unknown as FaultWorld;
}

const state = (pid: number) => {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
};

describe('the fault agent', () => {
  it('kills a Riak node with riakctl kill N and starts it again with riakctl start-node N after the fault', async () => {
    const dir = tempDir('chaos-riak-');
    try {
      const calls = join(dir.path, 'calls');
      const script = join(dir.path, 'riakctl');
      writeFileSync(script, `#!/bin/sh\necho "$(date +%s%3N) $*" >> ${calls}\n`);
      chmodSync(script, 0o755);
      const fault: FaultPlan = { target: 'riak', mode: 'kill', atMs: 50, forMs: 300, node: 2 };
      const strike = await runFault(fault, riakWorld(script, dir.path), Date.now(), new Promise(() => undefined));
      expect(strike).toMatchObject({
        struck: true,
        detail: expect.stringMatching(/^riak dev2 killed and started again, serving 0\.\d s after the kill$/),
      });
      const lines = readFileSync(calls, 'utf8')
        .trim()
        .split('\n')
        .map((l) => l.split(' '));
      expect(lines.map(([, ...args]) => args.join(' '))).toEqual(['kill 2', 'start-node 2']);
      expect(Number(lines[1]![0]) - Number(lines[0]![0])).toBeGreaterThanOrEqual(300);
    } finally {
      dir.remove();
    }
  });

  it('freezes the Erlang VM of one Riak node with SIGSTOP and thaws it after the fault, leaving the others alone', async () => {
    const dir = tempDir('chaos-riak-');
    // As in a real node: the executable is beam.smp, argv[0] the node's bin/riak.
    copyFileSync('/bin/sleep', join(dir.path, 'beam.smp'));
    const vm = (node: number) =>
      spawn('bash', ['-c', `exec -a ${dir.path}/dev${node}/bin/riak ${dir.path}/beam.smp 30`], {
        detached: true,
        stdio: 'ignore',
      });
    const [two, three] = [vm(2), vm(3)];
    try {
      await sleep(200);
      const world = riakWorld('/bin/false', dir.path);
      expect(world.riak!.beamPids(2)).toEqual([two.pid]);
      const fault: FaultPlan = { target: 'riak', mode: 'stop', atMs: 0, forMs: 600, node: 2 };
      const striking = runFault(fault, world, Date.now(), new Promise(() => undefined));
      await sleep(300);
      expect(state(two.pid!)).toBe('T');
      expect(state(three.pid!)).not.toBe('T');
      expect(await striking).toMatchObject({ struck: true, detail: `riak dev2 (pid ${two.pid}) frozen` });
      expect(state(two.pid!)).not.toBe('T');
    } finally {
      two.kill('SIGKILL');
      three.kill('SIGKILL');
      dir.remove();
    }
  });

  it('does not strike once the run is over, and says so', async () => {
    const fault: FaultPlan = { target: 'node-new', mode: 'kill', atMs: 0, forMs: 100, node: 1 };
    const strike = await runFault(
      fault,
      { stackOf: async () => undefined } as unknown as FaultWorld,
      Date.now(),
      sleep(300),
    );
    expect(strike).toEqual({ fault, struck: false, detail: 'the run was over before it struck' });
  });
});
