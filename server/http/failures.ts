/**
 * How a failed request is answered: the one place store errors become HTTP statuses, API errors
 * become their JSON body, and anything else a logged 500 that tells the client nothing internal.
 */
import type { ServerResponse } from 'node:http';
import type { Logger } from '../../src/logging.ts';
import { ApiError } from '../errors.ts';
import { StoreError } from '../store/port.ts';
import { sendError, sendJson } from './io.ts';

/** The storage errors a client can act on, as API errors. */
export function fromStoreError(error: StoreError, retryAfterSeconds: number): ApiError {
  switch (error.code) {
    case 'fenced':
      // The one answer to a write refused by the fence, held first or not (server/flip/hold.ts):
      // a new connection may reach the stack the service switched to.
      return new ApiError(503, 'fenced', 'writes are fenced while the service switches stacks: retry shortly', {
        'retry-after': String(retryAfterSeconds),
        connection: 'close',
      });
    case 'unavailable':
      return new ApiError(503, 'store-unavailable', error.message, { 'retry-after': '1' });
    case 'not-found':
      return new ApiError(404, 'not-found', error.message);
    case 'precondition-failed':
      return new ApiError(412, 'precondition-failed', error.message);
    case 'cursor-gone':
      return new ApiError(410, 'cursor-gone', `${error.message}: start again without since`);
  }
}

/** What the log line of an unexpected failure says about the request. */
export interface FailureContext {
  route: string;
  method: string;
  user: string | undefined;
  client: string;
}

export function answerFailure(
  response: ServerResponse,
  caught: unknown,
  retryAfterSeconds: number,
  logger: Logger,
  request: FailureContext,
): void {
  const error = caught instanceof StoreError ? fromStoreError(caught, retryAfterSeconds) : caught;
  if (response.headersSent) {
    logger.error(
      { err: error, route: request.route, user: request.user },
      'request failed after its answer started; cutting the connection',
    );
    response.destroy();
  } else if (error instanceof ApiError) {
    sendError(response, error);
  } else {
    logger.error({ err: error, ...request }, 'request failed');
    sendJson(response, 500, { error: { code: 'internal', message: 'internal error; the node logged the details' } });
  }
}
