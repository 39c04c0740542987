import { afterAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { Resolver } from 'node:dns/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { repoRoot } from '../../src/config/environment.ts';
import { freePort } from '../../src/net.ts';
import { alive, stopLocalEnvironment } from '../../src/local/control.ts';
import { readLocalState } from '../../src/local/state.ts';
import { createLogger } from '../../src/logging.ts';

const dir = mkdtempSync(join(tmpdir(), 'switchyard-up-'));
const stateFile = join(dir, 'local.json');

function switchyard(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((res) => {
    execFile(process.execPath, [resolve(repoRoot, 'bin/switchyard.js'), ...args], {
      cwd: repoRoot, env: { ...process.env, SWITCHYARD_LOCAL_STATE: stateFile, LOG_LEVEL: 'warn' }, timeout: 280_000,
    }, (error, stdout, stderr) => res({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }));
  });
}

// `switchyard up` in the background and `switchyard down`, as a developer runs them.
describe('switchyard up and down', () => {
  afterAll(async () => {
    // Whatever a failed assertion left running.
    await stopLocalEnvironment(stateFile, dir, createLogger('up-down-test', { level: 'warn' }));
    rmSync(dir, { recursive: true, force: true });
  });

  it('starts the local environment in the background, reports it, and stops everything', async () => {
    const [temporalPort, uiPort, dnsPort] = [await freePort(), await freePort(), await freePort()];
    const up = await switchyard('up', '--temporal-port', String(temporalPort), '--ui-port', String(uiPort),
      '--dns-port', String(dnsPort), '--seed-items', '50');
    expect(up.stderr).not.toMatch(/^switchyard:/m);
    expect(up.code).toBe(0);
    expect(up.stdout).toContain(`Temporal Web UI     http://127.0.0.1:${uiPort}`);
    expect(up.stdout).toMatch(/dev: sync\.dev\.navcloud\.test -> navcloud-dev-blue-[0-9a-f]{8} \(127\.\d+\.\d+\.1, 127\.\d+\.\d+\.2\), port 7070/);

    const state = readLocalState(stateFile);
    expect(state.readyAt).toBeDefined();
    expect(state.dnsServer).toBe(`127.0.0.1:${dnsPort}`);
    const pids = Object.values(state.processes);
    expect(pids.every(alive)).toBe(true);
    // The DNS responder runs as a process of its own (a fault can hit it alone); down stops it with the rest.
    expect(state.processes.dns).toEqual(expect.any(Number));
    expect(state.processes.dns).not.toBe(state.processes.supervisor);

    // The public name resolves, through the responder, to the seeded stack the summary named.
    const resolver = new Resolver({ timeout: 1_000, tries: 2 });
    resolver.setServers([state.dnsServer]);
    const addresses = await resolver.resolve4('sync.dev.navcloud.test');
    for (const address of addresses) expect(up.stdout).toContain(address);

    // A second `up` finds the running environment instead of starting another.
    const again = await switchyard('up', '--temporal-port', String(temporalPort), '--ui-port', String(uiPort), '--dns-port', String(dnsPort));
    expect(again.code).toBe(0);
    expect(again.stdout).toContain(`supervisor pid ${state.processes.supervisor}`);

    const down = await switchyard('down');
    expect(down.code).toBe(0);
    expect(down.stdout).toContain(`stopped supervisor (pid ${state.processes.supervisor})`);
    expect(pids.filter(alive)).toEqual([]);
    expect(existsSync(stateFile)).toBe(false);
    expect(readdirSync(join(dir, 'stacks')).filter((n) => !n.startsWith('.'))).toEqual([]);

    const downAgain = await switchyard('down');
    expect(downAgain.code).toBe(0);
    expect(downAgain.stdout).toContain('was not running');
  }, 300_000);
});
