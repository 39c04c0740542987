/**
 * The local profile's fleet: a stack's navcloud-sync processes as the local stack provisioner
 * started them, their log files, and /bin/sh on this machine for commands.
 */
import { spawn } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import type { StackDescription } from '../../cloud/ports.ts';
import type { StackAdmin } from '../../navcloud/admin-client.ts';
import type { NodeStats } from '../../navcloud/protocol.ts';
import type { LocalNodeProcess, LocalStackProvisioner } from '../../cloud/local/stack-provisioner.ts';
import { signalGroup } from '../../cloud/local/processes.ts';
import {
  TIMED_OUT,
  type ExecRequest,
  type ExecResult,
  type FleetNode,
  type FleetPlatform,
  type LogLine,
  type LogMark,
  type LogQuery,
} from './port.ts';
import { boundedAll, keepNewest, lineTime, newest } from './lines.ts';

const FOLLOW_POLL_MS = 250;
/** Output kept per node and stream: a command that prints without end must not fill memory. */
const OUTPUT_LIMIT = 1024 * 1024;

export class LocalFleetPlatform implements FleetPlatform {
  /** `admin` signs with the environment's secret; its calls name each node's own URL. */
  constructor(
    private readonly provisioner: LocalStackProvisioner,
    private readonly admin: StackAdmin,
  ) {}

  async nodes(stacks: StackDescription[]): Promise<FleetNode[]> {
    return stacks.flatMap((stack) =>
      this.provisioner.nodeProcesses(stack.name).map((node) => ({
        stack: stack.name,
        id: node.id,
        address: node.address,
        url: node.url,
        state: node.pid === undefined ? 'stopped' : 'running',
      })),
    );
  }

  async logs(nodes: FleetNode[], query: LogQuery): Promise<{ lines: LogLine[]; mark: LogMark }> {
    const lines: LogLine[] = [];
    const mark: LogMark = { at: Date.now(), offsets: {} };
    for (const node of nodes) {
      const file = this.process(node).logFile;
      // Up to the size it has now: what is appended meanwhile is the follow's.
      const size = await sizeOf(file);
      mark.offsets[node.id] = size;
      if (size === 0) continue;
      const own: LogLine[] = [];
      let last = 0;
      const input = createReadStream(file, { encoding: 'utf8', end: size - 1 });
      const reading = createInterface({ input, crlfDelay: Infinity });
      try {
        for await (const text of reading) {
          query.signal?.throwIfAborted();
          if (!text) continue;
          last = lineTime(text) ?? last;
          if (query.since === undefined || last >= query.since) keepNewest(own, { node: node.id, time: last, text });
        }
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      } finally {
        reading.close();
        input.destroy();
      }
      lines.push(...newest(own));
    }
    return { lines, mark };
  }

  async follow(
    nodes: FleetNode[],
    from: LogMark,
    onLines: (lines: LogLine[]) => void,
    signal: AbortSignal,
  ): Promise<void> {
    const tails = await Promise.all(
      nodes.map(async (node) => {
        const file = this.process(node).logFile;
        return { node, file, offset: from.offsets[node.id] ?? (await sizeOf(file)), partial: '', last: from.at };
      }),
    );
    while (!signal.aborted) {
      const batch: LogLine[] = [];
      for (const tail of tails) {
        const size = await sizeOf(tail.file);
        // A restarted node appends to the same file; a smaller file was replaced: read it from the start.
        if (size < tail.offset) tail.offset = 0;
        if (size === tail.offset) continue;
        const handle = await open(tail.file, 'r');
        try {
          const length = Math.min(size - tail.offset, OUTPUT_LIMIT);
          const buffer = Buffer.alloc(length);
          const { bytesRead } = await handle.read(buffer, 0, length, tail.offset);
          tail.offset += bytesRead;
          const texts = (tail.partial + buffer.subarray(0, bytesRead).toString('utf8')).split('\n');
          tail.partial = texts.pop() ?? '';
          for (const text of texts) {
            if (!text) continue;
            tail.last = lineTime(text) ?? tail.last;
            batch.push({ node: tail.node.id, time: tail.last, text });
          }
        } finally {
          await handle.close();
        }
      }
      if (batch.length) onLines(batch);
      await sleep(FOLLOW_POLL_MS, undefined, { signal }).catch(() => undefined);
    }
  }

  exec(nodes: FleetNode[], request: ExecRequest): Promise<ExecResult[]> {
    return boundedAll(nodes, request.parallel, (node) => this.run(this.process(node), request));
  }

  async restart(node: FleetNode): Promise<void> {
    await this.provisioner.restartNode(node.stack, node.id);
  }

  stats(nodes: FleetNode[]): Promise<Array<NodeStats | undefined>> {
    return Promise.all(nodes.map((node) => this.admin.stats(node.url).catch(() => undefined)));
  }

  async drain(node: FleetNode): Promise<void> {
    await this.admin.drain(node.url);
  }

  async ready(node: FleetNode): Promise<boolean> {
    try {
      const response = await fetch(`${node.url}/readyz`, { signal: AbortSignal.timeout(2_000) });
      await response.body?.cancel();
      return response.ok;
    } catch {
      return false;
    }
  }

  private process(node: FleetNode): LocalNodeProcess {
    const found = this.provisioner.nodeProcesses(node.stack).find((n) => n.id === node.id);
    if (!found) throw new Error(`node ${node.id} of ${node.stack} is gone`);
    return found;
  }

  private run(node: LocalNodeProcess, request: ExecRequest): Promise<ExecResult> {
    return new Promise((resolve) => {
      const child = spawn('/bin/sh', ['-c', request.script], {
        cwd: node.dir,
        detached: true,
        stdio: ['ignore', 'pipe', 'pipe'],
        env: {
          ...process.env,
          NODE_ID: node.id,
          NODE_URL: node.url,
          ...(node.pid === undefined ? {} : { NODE_PID: String(node.pid) }),
        },
      });
      const out = { stdout: '', stderr: '' };
      child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
        out.stdout = keep(out.stdout, chunk);
      });
      child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
        out.stderr = keep(out.stderr, chunk);
      });
      let timedOut = false;
      const kill = () => {
        if (child.pid !== undefined) signalGroup(child.pid, 'SIGKILL');
      };
      const timer = setTimeout(() => {
        timedOut = true;
        kill();
      }, request.timeoutSeconds * 1000);
      request.signal?.addEventListener('abort', kill, { once: true });
      child.once('error', (err) => {
        out.stderr = keep(out.stderr, `${err.message}\n`);
      });
      child.once('close', (code) => {
        clearTimeout(timer);
        request.signal?.removeEventListener('abort', kill);
        resolve({ node: node.id, exitCode: timedOut ? TIMED_OUT : (code ?? 128), ...out, timedOut });
      });
    });
  }
}

function keep(buffered: string, chunk: string): string {
  return buffered.length >= OUTPUT_LIMIT ? buffered : (buffered + chunk).slice(0, OUTPUT_LIMIT);
}

async function sizeOf(file: string): Promise<number> {
  try {
    return (await stat(file)).size;
  } catch {
    return 0;
  }
}
