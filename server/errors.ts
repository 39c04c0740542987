import type { ApiErrorBody } from '../src/navcloud/protocol.ts';

/** An error the HTTP layer answers as `{ error: { code, message } }` with its status. */
export class ApiError extends Error {
  override name = 'ApiError';
  constructor(
    readonly status: 400 | 401 | 403 | 404 | 405 | 409 | 410 | 412 | 413 | 415 | 429 | 503,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
    /** More of the answer beside the error (a 409 fence-conflict carries the fence as it is). */
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
  }

  body(): ApiErrorBody {
    return { ...this.extra, error: { code: this.code, message: this.message } };
  }
}
