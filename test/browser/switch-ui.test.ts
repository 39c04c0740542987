import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { chromium, type BrowserContext, type Frame } from 'playwright-core';
import { repoRoot } from '../../src/config/environment.ts';
import { freePort } from '../../src/net.ts';
import { TASK_QUEUE, type SwitchInput, type SwitchReport } from '../../src/switch/contract.ts';
import { untilPhase } from '../support/phase.ts';
import { switchStartOptions } from '../../src/switch/contract.ts';
import { startTestEnvironment, type TestEnvironment } from '../local/local-env.ts';
import { tempDir } from '../support/temp-dir.ts';

const artifacts = resolve(repoRoot, 'test-artifacts');

// A real Chromium (Debian's) on the Temporal Web UI of the local environment, during a switch.
describe('the Temporal Web UI during a switch', () => {
  let t: TestEnvironment;
  let browser: BrowserContext;
  let profile: string;
  let environmentsDir: string;

  beforeAll(async () => {
    // dev with manual approval: the switch then holds in one phase for as long as the browser needs.
    environmentsDir = tempDir('switchyard-envs-').path;
    const dev = readFileSync(join(repoRoot, 'infra/environments/dev.yaml'), 'utf8');
    writeFileSync(join(environmentsDir, 'dev.yaml'), dev.replace(/^approval: auto$/m, 'approval: manual'));
    t = await startTestEnvironment(200, { uiPort: await freePort(), environmentsDir });
    profile = tempDir('switchyard-chromium-').path;
    // A fresh profile directory (playwright passes it as --user-data-dir).
    browser = await chromium.launchPersistentContext(profile, {
      executablePath: '/usr/bin/chromium',
      headless: true,
      viewport: { width: 1400, height: 1000 },
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
  }, 240_000);

  afterAll(async () => {
    await browser?.close();
    const left = await t?.stop();
    expect(left?.leftoverPids ?? []).toEqual([]);
  });

  it('shows the switch workflow, its SwitchPhase and its current details', async () => {
    const input: SwitchInput = { env: 'dev', backup: 'latest', trigger: 'manual', version: 'ui-test' };
    const handle = await t.client.workflow.start('stackSwitch', {
      ...switchStartOptions(input),
      taskQueue: TASK_QUEUE,
      args: [input],
    });
    const status = await untilPhase(handle, 'awaiting-approval', 180_000);

    const page = await browser.newPage();
    const ui = t.localEnvironment.state.temporalUiUrl!;
    // The list, filtered by the search attribute the workflow upserts: the switch must be in it.
    const query = `WorkflowType="stackSwitch" AND SwitchPhase="awaiting-approval"`;
    await page.goto(`${ui}/namespaces/default/workflows?query=${encodeURIComponent(query)}`);
    const row = page.getByRole('link', { name: handle.workflowId }).first();
    await row.waitFor({ timeout: 60_000 });
    await row.click();

    await page.waitForURL(/\/workflows\/switch-dev\//, { timeout: 30_000 });
    mkdirSync(artifacts, { recursive: true });

    // The workflow's search attributes: SwitchPhase among them, with the phase.
    await page.getByText('Search Attributes', { exact: true }).click();
    const phaseRow = page.getByText('SwitchPhase').first();
    await phaseRow.waitFor({ timeout: 60_000 });
    await page.getByText('awaiting-approval').first().waitFor({ timeout: 30_000 });
    const attributesShot = join(artifacts, 'temporal-ui-switch-attributes.png');
    await page.screenshot({ path: attributesShot, fullPage: true });

    // Its current details (user metadata), headed by the phase and naming the stack waiting for approval.
    // The UI renders each markdown block (static details, current details) in its own sandboxed frame.
    await page.getByText('User Metadata', { exact: true }).click();
    const shot = join(artifacts, 'temporal-ui-switch.png');
    const waiting = new RegExp(`${status.to!.stack} passed its smoke checks`);
    let currentDetails: Frame | undefined;
    try {
      for (const deadline = Date.now() + 60_000; !currentDetails && Date.now() < deadline; await sleep(250)) {
        for (const frame of page.frames()) {
          if (
            await frame
              .getByText(waiting)
              .count()
              .catch(() => 0)
          )
            currentDetails = frame;
        }
      }
    } finally {
      await page.screenshot({ path: shot, fullPage: true });
    }
    expect(currentDetails, 'a frame showing the current details').toBeDefined();
    expect(await currentDetails!.locator('strong').first().textContent()).toBe('awaiting-approval');
    expect(statSync(shot).size).toBeGreaterThan(10_000);
    expect(statSync(attributesShot).size).toBeGreaterThan(10_000);

    await handle.executeUpdate('abort', { args: [{ by: 'browser-test', comment: 'seen in the UI' }] });
    const report = (await handle.result()) as SwitchReport;
    expect(report.outcome).toBe('aborted');
  }, 300_000);
});
