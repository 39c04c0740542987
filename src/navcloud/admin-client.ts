/**
 * The orchestrator's client for one stack's admin API: export, import, the fence (read, take or
 * renew with a lease, forward, unfence: each change naming the epoch and mode it expects), drain,
 * undrain, stats and health. Failures are CloudErrors so activities decide once whether Temporal
 * should retry: 5xx, 429 and connection problems are retryable; other 4xx are not, and a change of
 * the fence that found another state is a FenceConflictError carrying that state.
 */
import { signToken } from './token.ts';
import { CloudError } from '../cloud/errors.ts';
import type {
  ApiErrorBody,
  ExportEndLine,
  ExportItemLine,
  ExportLine,
  FenceConflictBody,
  FenceRequest,
  FenceResult,
  ForwardRequest,
  ImportResult,
  NodeStats,
  SettleResult,
  RevisionExportLine,
  UnfenceRequest,
} from './protocol.ts';

/** 409 fence-conflict: the change found the fence other than it expected and changed nothing. */
export class FenceConflictError extends CloudError {
  constructor(
    message: string,
    url: string,
    readonly current: FenceResult,
  ) {
    super(message, false, 'Http409', url);
  }
}

export interface StackAdmin {
  /** Every line of GET /admin/export (since `since` when given), the end line last. */
  exportSince(since: string | undefined, signal?: AbortSignal): AsyncIterable<ExportLine>;
  /** Every item in id order with its revision, cursor and copied revision (GET /admin/revisions), the end line last. */
  revisionsById(signal?: AbortSignal): AsyncIterable<RevisionExportLine>;
  /**
   * One POST /admin/import of these lines as an NDJSON body; with `end` (the export's end line, on
   * the last batch) the stack also numbers every later change above the export's cursor.
   */
  importLines(lines: ExportItemLine[], signal?: AbortSignal, end?: ExportEndLine): Promise<ImportResult>;
  /** GET /admin/fence: the fence as the answering node acts on it, with its epoch. */
  fenceState(signal?: AbortSignal): Promise<FenceResult>;
  /** POST /admin/fence: takes the fence (expected open) or renews its lease (expected fenced). */
  fence(request: FenceRequest, signal?: AbortSignal): Promise<FenceResult>;
  /** POST /admin/forward: the switch's commit, from a live fence with nothing acknowledged past the cursor. */
  forward(request: ForwardRequest, signal?: AbortSignal): Promise<FenceResult>;
  unfence(request: UnfenceRequest, signal?: AbortSignal): Promise<FenceResult>;
  /** POST /admin/drain on one node (a base URL from the stack's `nodes`). */
  drain(node: string, signal?: AbortSignal): Promise<void>;
  /** POST /admin/undrain on one node: it reports ready and takes streams again. */
  undrain(node: string, signal?: AbortSignal): Promise<void>;
  stats(node: string, signal?: AbortSignal): Promise<NodeStats>;
  /** GET /admin/settled on one node: waits up to `withinMs` for the writes it began before the call to resolve. */
  settled(node: string, withinMs: number, signal?: AbortSignal): Promise<SettleResult>;
  /** GET /admin/items/:id: the item as an export line whoever owns it, or undefined when the stack has none. */
  item(id: string, signal?: AbortSignal): Promise<ExportItemLine | undefined>;
  /** GET /healthz on a base URL: true on 200, false on any other answer or no answer. */
  healthy(baseUrl: string, signal?: AbortSignal): Promise<boolean>;
}

export interface AdminClientOptions {
  adminUrl: string;
  /** The stack's JWT secret, already resolved (resolveSecret). */
  jwtSecret: string;
  /** Ceiling for one non-streaming call. */
  requestTimeoutMs?: number;
}

/** Well below the server's ADMIN_TOKEN_MAX_SECONDS. */
const TOKEN_LIFETIME_S = 300;

export function createAdminClient(options: AdminClientOptions): StackAdmin {
  const adminUrl = options.adminUrl.replace(/\/+$/, '');
  const requestTimeoutMs = options.requestTimeoutMs ?? 30_000;
  let token: { value: Promise<string>; renewAt: number } | undefined;

  async function bearer(): Promise<string> {
    if (!token || Date.now() >= token.renewAt) {
      // Renew well before expiry so a token never dies in flight; concurrent calls share one signing.
      token = {
        value: signToken(options.jwtSecret, 'switchyard', { admin: true, expiresIn: TOKEN_LIFETIME_S }),
        renewAt: Date.now() + (TOKEN_LIFETIME_S / 2) * 1000,
      };
    }
    return `Bearer ${await token.value}`;
  }

  async function call(
    method: string,
    url: string,
    init: { body?: string; contentType?: string; signal?: AbortSignal; stream?: boolean } = {},
  ): Promise<Response> {
    const signals = [init.signal, init.stream ? undefined : AbortSignal.timeout(requestTimeoutMs)].filter(
      (s): s is AbortSignal => s !== undefined,
    );
    let response: Response;
    try {
      response = await fetch(url, {
        method,
        headers: {
          authorization: await bearer(),
          ...(init.body !== undefined ? { 'content-type': init.contentType ?? 'application/x-ndjson' } : {}),
        },
        body: init.body,
        signal: signals.length ? AbortSignal.any(signals) : undefined,
      });
    } catch (err) {
      if (init.signal?.aborted) throw err;
      throw new CloudError(`${method} ${url} failed: ${describeCause(err)}`, true, 'Unreachable', url, { cause: err });
    }
    if (!response.ok) throw await httpError(method, url, response);
    return response;
  }

  async function json<T>(
    method: string,
    path: string,
    signal?: AbortSignal,
    base = adminUrl,
    body?: unknown,
  ): Promise<T> {
    const url = `${base.replace(/\/+$/, '')}${path}`;
    const response = await call(method, url, {
      signal,
      ...(body === undefined ? {} : { body: JSON.stringify(body), contentType: 'application/json' }),
    });
    try {
      return (await response.json()) as T;
    } catch (err) {
      throw new CloudError(
        `${method} ${url} answered ${response.status} with a body that is not JSON`,
        true,
        'BadResponse',
        url,
        { cause: err },
      );
    }
  }

  const exportUrl = (since: string | undefined) =>
    `${adminUrl}/admin/export${since ? `?since=${encodeURIComponent(since)}` : ''}`;

  async function* exportLines<Line extends ExportLine | RevisionExportLine>(
    url: string,
    kind: Line['kind'],
    signal?: AbortSignal,
  ): AsyncIterable<Line> {
    const response = await call('GET', url, { signal, stream: true });
    let ended = false;
    for await (const line of ndjsonLines(response, url)) {
      const parsed = parseLine<Line>(line, url, kind);
      if (parsed.kind === 'end') ended = true;
      yield parsed;
    }
    // A cut connection ends the body early; without the end line nothing proves completeness.
    if (!ended) throw new CloudError(`${url}: export ended without its end line`, true, 'ExportTruncated', url);
  }

  return {
    exportSince(since, signal) {
      return exportLines<ExportLine>(exportUrl(since), 'item', signal);
    },
    revisionsById(signal) {
      return exportLines<RevisionExportLine>(`${adminUrl}/admin/revisions`, 'revision', signal);
    },
    async importLines(lines, signal, end) {
      const url = `${adminUrl}/admin/import`;
      const body = [...lines, ...(end ? [end] : [])].map((line) => JSON.stringify(line)).join('\n') + '\n';
      const response = await call('POST', url, { body, signal });
      return (await response.json()) as ImportResult;
    },
    fenceState: (signal) => json<FenceResult>('GET', '/admin/fence', signal),
    fence: (request, signal) => json<FenceResult>('POST', '/admin/fence', signal, adminUrl, request),
    forward: (request, signal) => json<FenceResult>('POST', '/admin/forward', signal, adminUrl, request),
    unfence: (request, signal) => json<FenceResult>('POST', '/admin/unfence', signal, adminUrl, request),
    async drain(node, signal) {
      await json<unknown>('POST', '/admin/drain', signal, node);
    },
    async undrain(node, signal) {
      await json<unknown>('POST', '/admin/undrain', signal, node);
    },
    stats: (node, signal) => json<NodeStats>('GET', '/admin/stats', signal, node),
    settled: (node, withinMs, signal) =>
      json<SettleResult>('GET', `/admin/settled?within_ms=${withinMs}`, signal, node),
    async item(id, signal) {
      try {
        return await json<ExportItemLine>('GET', `/admin/items/${encodeURIComponent(id)}`, signal);
      } catch (err) {
        if (err instanceof CloudError && err.code === 'Http404') return undefined;
        throw err;
      }
    },
    async healthy(baseUrl, signal) {
      const timeout = AbortSignal.timeout(requestTimeoutMs);
      try {
        const response = await fetch(`${baseUrl.replace(/\/+$/, '')}/healthz`, {
          signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
        });
        await response.body?.cancel();
        return response.ok;
      } catch {
        if (signal?.aborted) throw signal.reason;
        return false;
      }
    },
  };
}

async function httpError(method: string, url: string, response: Response): Promise<CloudError> {
  let detail = response.statusText;
  try {
    const text = await response.text();
    try {
      const body = JSON.parse(text) as Partial<ApiErrorBody> & Partial<FenceConflictBody>;
      detail = body.error?.message ? `${body.error.code ?? 'error'}: ${body.error.message}` : text.slice(0, 200);
      if (response.status === 409 && body.error?.code === 'fence-conflict' && body.fence) {
        return new FenceConflictError(`${method} ${url} answered 409: ${detail}`, url, body.fence);
      }
    } catch {
      detail = text.slice(0, 200) || detail;
    }
  } catch {
    // The body is only there to explain; the status alone decides.
  }
  const retryable = response.status >= 500 || response.status === 429;
  return new CloudError(
    `${method} ${url} answered ${response.status}: ${detail}`,
    retryable,
    `Http${response.status}`,
    url,
  );
}

async function* ndjsonLines(response: Response, url: string): AsyncIterable<string> {
  if (!response.body) return;
  const decoder = new TextDecoder();
  let buffered = '';
  try {
    for await (const chunk of response.body as AsyncIterable<Uint8Array>) {
      buffered += decoder.decode(chunk, { stream: true });
      let newline: number;
      while ((newline = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, newline).trim();
        buffered = buffered.slice(newline + 1);
        if (line) yield line;
      }
    }
  } catch (err) {
    throw new CloudError(`${url}: export stream broke: ${describeCause(err)}`, true, 'ExportTruncated', url, {
      cause: err,
    });
  }
  const rest = (buffered + decoder.decode()).trim();
  if (rest) yield rest;
}

function parseLine<Line extends ExportLine | RevisionExportLine>(
  line: string,
  url: string,
  itemKind: Line['kind'],
): Line {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    throw new CloudError(`${url}: export line is not JSON: ${line.slice(0, 120)}`, false, 'BadExportLine', url);
  }
  const kind = (value as { kind?: unknown } | null)?.kind;
  if (kind !== itemKind && kind !== 'end') {
    throw new CloudError(
      `${url}: export line has kind ${JSON.stringify(kind)}, expected "${itemKind}" or "end"`,
      false,
      'BadExportLine',
      url,
    );
  }
  return value as Line;
}

function describeCause(err: unknown): string {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? (err as Error).message;
}
