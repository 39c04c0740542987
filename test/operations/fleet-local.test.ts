import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { testLogger } from '../support/logger.ts';
import { LocalStackProvisioner } from '../../src/cloud/local/stack-provisioner.ts';
import { createPorts } from '../../src/cloud/factory.ts';
import { loadEnvironment } from '../../src/config/environment.ts';
import { writeLocalState, type LocalState } from '../../src/local/state.ts';
import { freePort } from '../../src/net.ts';
import { signToken } from '../../src/navcloud/token.ts';
import type { NodeRow, StatsRow } from '../../src/operations/fleet/fleet.ts';
import type { ExecResult, LogLine } from '../../src/operations/fleet/port.ts';
import { createZone } from '../aws/moto-helpers.ts';
import { startMoto, motoRegion, type Moto } from '../support/moto.ts';
import { environmentsDir, environmentYaml, runBin, startBin } from '../cli/run-cli.ts';
import { tempDir } from '../support/temp-dir.ts';

const SECRET = 'fleet-test-secret-0123456789abcdef';
const admin = { authorization: `Bearer ${await signToken(SECRET, 'fleet-test', { admin: true })}` };

// `switchyard fleet` on the local profile: real navcloud-sync processes, their log files and /proc.
describe('switchyard fleet (local profile, real processes)', () => {
  let moto: Moto;
  let dataDir: string;
  let envs: { dir: string; remove(): void };
  let provisioner: LocalStackProvisioner;
  const live = 'navcloud-flt-blue-aaaa01';
  const spare = 'navcloud-flt-green-bbbb02';
  let liveNodes: string[];
  let liveIds: string[];
  let cliEnv: Record<string, string>;

  const fleet = (...args: string[]) => runBin(['--environments', envs.dir, 'fleet', ...args], cliEnv, 120_000);
  const json = <T>(stdout: string) => JSON.parse(stdout) as T;

  beforeAll(async () => {
    moto = await startMoto();
    dataDir = tempDir('switchyard-fleet-').path;
    const zone = await createZone(moto, 'navcloud.test');
    const common = `hostedZoneId: ${zone}\njwtSecret: ${SECRET}`;
    envs = environmentsDir({
      flt: environmentYaml('flt')
        .replace('hostedZoneId: ZLOCAL', '')
        .replace(/^jwtSecret: .*$/m, common),
      fltm: environmentYaml('fltm')
        .replace('hostedZoneId: ZLOCAL', '')
        .replace(/^jwtSecret: .*$/m, `${common}\napproval: manual`),
    });
    const state: LocalState = {
      dataDir,
      region: motoRegion,
      motoEndpoint: moto.endpoint,
      temporalAddress: '127.0.0.1:1',
      dnsServer: '127.0.0.1:1',
      bus: 'memory',
      store: 'sqlite',
      hostedZones: {},
      processes: {},
      startedAt: new Date().toISOString(),
    };
    const stateFile = join(dataDir, 'local.json');
    writeLocalState(state, stateFile);
    cliEnv = { SWITCHYARD_LOCAL_STATE: stateFile, LOG_LEVEL: 'warn', USER: 'fleet-tester' };

    provisioner = new LocalStackProvisioner({
      stacksDir: join(dataDir, 'stacks'),
      jwtSecret: SECRET,
      stopGraceMs: 5_000,
      logger: testLogger,
    });
    for (const [name, colour, nodes] of [
      [live, 'blue', '2'],
      [spare, 'green', '1'],
    ] as const) {
      await provisioner.create({
        name,
        env: 'flt',
        colour,
        workflowId: `switch-flt/${name}`,
        template: 'local-stack',
        parameters: { nodes, port: String(await freePort()), heartbeatMs: '500' },
      });
    }
    const ready = await provisioner.waitUntilReady(live);
    await provisioner.waitUntilReady(spare);
    liveNodes = ready.outputs!.nodes;
    liveIds = provisioner.nodeProcesses(live).map((n) => n.id);
    const environment = await loadEnvironment('flt', envs.dir);
    const { dns } = createPorts(environment, testLogger, state);
    await dns.switch({
      recordName: environment.recordName,
      ttl: 1,
      expected: undefined,
      stack: live,
      target: ready.outputs!.dnsTarget,
    });
  }, 180_000);

  afterAll(async () => {
    for (const name of [live, spare]) await provisioner?.delete(name);
    await moto?.stop();
    envs?.remove();
  });

  it("lists the live stack's nodes by default and every stack with --all", async () => {
    const run = await fleet('list', '--env', 'flt', '--json');
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const rows = json<{ nodes: NodeRow[] }>(run.stdout).nodes;
    expect(rows.map((r) => r.id)).toEqual(liveIds);
    expect(rows.map((r) => r.url)).toEqual(liveNodes);
    for (const row of rows) {
      expect(row).toMatchObject({
        stack: live,
        colour: 'blue',
        live: true,
        status: 'ready',
        state: 'running',
        openStreams: 0,
        version: '0.1.0',
      });
      expect(row.uptimeSeconds).toBeGreaterThanOrEqual(0);
    }
    const all = json<{ nodes: NodeRow[] }>((await fleet('list', '--env', 'flt', '--all', '--json')).stdout).nodes;
    expect(all.map((r) => [r.stack, r.colour, r.live])).toEqual(
      expect.arrayContaining([
        [spare, 'green', false],
        [live, 'blue', true],
      ]),
    );
    expect(all).toHaveLength(3);

    const table = await fleet('list', '--env', 'flt', '--stack', spare);
    expect(table.code).toBe(0);
    expect(table.stdout.split('\n')[0]).toMatch(
      /^STACK\s+COLOUR\s+LIVE\s+NODE\s+ADDRESS\s+STATUS\s+VERSION\s+UPTIME\s+STREAMS$/,
    );
    expect(table.stdout).toContain(`${spare}-node-1`);
    expect(table.stdout).not.toContain(live);
  });

  it("merges every node's log in time order, with --since and --grep", async () => {
    const before = new Date().toISOString();
    await sleep(20);
    // A line on each node after `before`: drain logs a warning; undrain puts the node back.
    for (const url of [...liveNodes].reverse()) {
      expect((await fetch(`${url}/admin/drain`, { method: 'POST', headers: admin })).status).toBe(200);
      expect((await fetch(`${url}/admin/undrain`, { method: 'POST', headers: admin })).status).toBe(200);
    }
    const all = (await fleet('logs', '--env', 'flt', '--json')).stdout
      .trim()
      .split('\n')
      .map((l) => json<LogLine>(l));
    expect(new Set(all.map((l) => l.node))).toEqual(new Set(liveIds));
    const times = all.map((l) => l.time);
    expect(times).toEqual([...times].sort((a, b) => a - b));
    expect(all.some((l) => l.text.includes('sync node listening'))).toBe(true);

    const since = (await fleet('logs', '--env', 'flt', '--json', '--since', before)).stdout
      .trim()
      .split('\n')
      .map((l) => json<LogLine>(l));
    expect(since.length).toBeLessThan(all.length);
    expect(since.every((l) => l.time >= Date.parse(before))).toBe(true);
    expect(since.filter((l) => l.text.includes('node draining')).map((l) => l.node)).toEqual([...liveIds].reverse());

    const grep = await fleet('logs', '--env', 'flt', '--grep', 'node (un)?drain', '--since', '10m');
    expect(grep.code).toBe(0);
    const lines = grep.stdout.trim().split('\n');
    expect(lines.length).toBeGreaterThanOrEqual(4);
    for (const line of lines)
      expect(line).toMatch(
        new RegExp(`^(${liveIds.join('|')}) \\| \\[\\d\\d:\\d\\d:\\d\\d\\.\\d{3}\\] WARN .*node (un)?drain`),
      );

    const one = await fleet('logs', '--env', 'flt', '--node', liveIds[1]!, '--json');
    expect(
      new Set(
        one.stdout
          .trim()
          .split('\n')
          .map((l) => json<LogLine>(l).node),
      ),
    ).toEqual(new Set([liveIds[1]]));
  });

  it('follows new lines until Ctrl-C, then exits 0', async () => {
    const running = startBin(
      [
        '--environments',
        envs.dir,
        'fleet',
        'logs',
        '--env',
        'flt',
        '--follow',
        '--grep',
        'followed-marker|node draining',
        '--since',
        '1s',
      ],
      cliEnv,
      60_000,
    );
    let out = '';
    running.child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
    });
    const drained = () => out.split('\n').filter((l) => l.includes('node draining')).length;
    const drainOnce = async () => {
      expect((await fetch(`${liveNodes[0]}/admin/drain`, { method: 'POST', headers: admin })).status).toBe(200);
      await fetch(`${liveNodes[0]}/admin/undrain`, { method: 'POST', headers: admin });
    };
    // The command takes a while to start: drain until a line shows (bounded), then once more, which
    // only the follow loop can show.
    for (let i = 0; i < 60 && drained() === 0; i++) {
      await drainOnce();
      await sleep(500);
    }
    const shown = drained();
    expect(shown).toBeGreaterThan(0);
    await drainOnce();
    await expect.poll(drained, { timeout: 15_000, interval: 100 }).toBeGreaterThan(shown);
    running.child.kill('SIGINT');
    const done = await running.done;
    expect(done.code).toBe(0);
    expect(
      done.stdout
        .trim()
        .split('\n')
        .every((l) => l.startsWith(`${liveIds[0]} | `)),
    ).toBe(true);
  });

  it('reports CPU, memory, load, open files, event-loop lag and streams per node', async () => {
    const run = await fleet('stats', '--env', 'flt', '--json');
    expect(run.code).toBe(0);
    const rows = json<{ nodes: StatsRow[] }>(run.stdout).nodes;
    expect(rows.map((r) => r.node)).toEqual(liveIds);
    for (const row of rows) {
      expect(row.problem).toBeUndefined();
      expect(row.os!.rssBytes).toBeGreaterThan(10 * 1024 * 1024);
      expect(row.os!.openFiles).toBeGreaterThan(5);
      expect(row.os!.cpuPercent).toBeGreaterThanOrEqual(0);
      expect(row.os!.load).toHaveLength(3);
      expect(row.eventLoopLagMs).toBeGreaterThanOrEqual(0);
      expect(row).toMatchObject({ openStreams: 0 });
      expect(row.requestRate).toBeGreaterThanOrEqual(0);
    }
  });

  it('runs a command on every node; a failing node makes exit 1 and is named', async () => {
    const ok = await fleet('exec', '--env', 'flt', '--json', '--', 'echo "on $NODE_ID"');
    expect(ok.code).toBe(0);
    expect(json<{ results: ExecResult[] }>(ok.stdout).results.map((r) => [r.node, r.exitCode, r.stdout])).toEqual(
      liveIds.map((id) => [id, 0, `on ${id}\n`]),
    );
    // The audit line: who, what, where.
    expect(ok.stderr).toMatch(/"by":"fleet-tester".*"command":"echo \\"on \$NODE_ID\\"".*"nodes":\[/);

    const bad = await fleet(
      'exec',
      '--env',
      'flt',
      '--parallel',
      '1',
      '--',
      `test "$NODE_ID" != ${liveIds[1]} || exit 7; echo fine`,
    );
    expect(bad.code).toBe(1);
    expect(bad.stdout).toContain(`${liveIds[0]} | fine`);
    expect(bad.stdout).toMatch(new RegExp(`${liveIds[1]}\\s+exit 7`));
    expect(bad.stderr).toContain(`switchyard: 1 of 2 nodes failed: ${liveIds[1]} (exit 7)`);

    const slow = await fleet('exec', '--env', 'flt', '--node', liveIds[0]!, '--timeout', '1', '--', 'sleep 30');
    expect(slow.code).toBe(1);
    expect(slow.stderr).toContain(`${liveIds[0]} (timed out)`);
  });

  it('answers bad input with one sentence and exit 2', async () => {
    const cases: Array<[string[], RegExp]> = [
      [
        ['list', '--env', 'flt', '--stack', 'navcloud-flt-red-0'],
        /^switchyard: environment flt has no stack navcloud-flt-red-0 \(its stacks: .*\)\n$/,
      ],
      [
        ['logs', '--env', 'flt', '--node', 'node-9'],
        /^switchyard: no node node-9 in navcloud-flt-blue-aaaa01 \(its nodes: .*\)\n$/,
      ],
      [['exec', '--env', 'flt', '--'], /^switchyard: fleet exec needs a command after --/],
      [['exec', '--env', 'fltm', '--', 'uptime'], /^switchyard: environment fltm has approval: manual: add --yes/],
      [['logs', '--env', 'flt', '--since', 'yesterday'], /^switchyard: --since must be like/],
      [['logs', '--env', 'flt', '--grep', '(['], /^switchyard: --grep '\(\[' is not a regular expression/],
      [['list', '--env', 'fltm'], /^switchyard: environment fltm has no live stack/],
    ];
    for (const [args, message] of cases) {
      const run = await fleet(...args);
      expect(run.stderr, args.join(' ')).toMatch(message);
      expect(run.stderr.trim().split('\n'), args.join(' ')).toHaveLength(1);
      expect(run.code, args.join(' ')).toBe(2);
    }
  });

  it('refuses to take the last ready node of the live stack down', async () => {
    await fetch(`${liveNodes[1]}/admin/drain`, { method: 'POST', headers: admin });
    try {
      const pids = provisioner.nodeProcesses(live).map((n) => n.pid);
      const run = await fleet('restart', '--env', 'flt', '--node', liveIds[0]!);
      expect(run.code).toBe(1);
      expect(run.stderr).toContain(
        `switchyard: refusing to restart ${liveIds[0]}: no other node of the live stack ${live} is ready`,
      );
      expect(provisioner.nodeProcesses(live).map((n) => n.pid)).toEqual(pids);
    } finally {
      await fetch(`${liveNodes[1]}/admin/undrain`, { method: 'POST', headers: admin });
    }
  });

  it('restarts the live stack one node at a time under client load without a failed request', async () => {
    const pidsBefore = provisioner.nodeProcesses(live).map((n) => n.pid);
    const user = {
      authorization: `Bearer ${await signToken(SECRET, 'load-user')}`,
      'content-type': 'application/json',
    };
    let stop = false;
    const figures = { ok: 0, failed: 0, retried: 0 };
    // Bounded: at most 5,000 requests or 90 s. Like a client behind DNS with both addresses: a
    // refused connection or a 503 moves to the other address, within a 5-second budget.
    const load = (async () => {
      const deadline = Date.now() + 90_000;
      for (let i = 0; i < 5_000 && !stop && Date.now() < deadline; i++) {
        const budget = Date.now() + 5_000;
        let done = false;
        for (let attempt = 0; !done && Date.now() < budget; attempt++) {
          const url = liveNodes[(i + attempt) % liveNodes.length]!;
          try {
            const put = await fetch(`${url}/v1/items/load-${i % 20}`, {
              method: 'PUT',
              headers: user,
              body: JSON.stringify({ type: 'trip', data: { i } }),
              signal: AbortSignal.timeout(2_000),
            });
            await put.arrayBuffer();
            if (put.status === 200 || put.status === 201) done = true;
            else if (put.status !== 503) break;
          } catch {
            // refused while the node restarts: the next attempt goes to the other address
          }
          if (!done) {
            figures.retried++;
            await sleep(20);
          }
        }
        if (done) figures.ok++;
        else figures.failed++;
        await sleep(5);
      }
    })();
    await sleep(500);
    const run = await fleet('restart', '--env', 'flt', '--json');
    stop = true;
    await load;
    expect(run.stderr).not.toMatch(/^switchyard:/m);
    expect(run.code).toBe(0);
    expect(json<{ restarted: string[] }>(run.stdout).restarted).toEqual(liveIds);
    const pidsAfter = provisioner.nodeProcesses(live).map((n) => n.pid);
    expect(pidsAfter.every((pid, i) => pid !== undefined && pid !== pidsBefore[i])).toBe(true);
    expect(figures.ok).toBeGreaterThan(20);
    expect(figures.failed).toBe(0);
    const after = json<{ nodes: NodeRow[] }>((await fleet('list', '--env', 'flt', '--json')).stdout).nodes;
    expect(after.map((r) => r.status)).toEqual(['ready', 'ready']);
  });
});
