/**
 * Bearer JWT (HS256) with the stack's shared secret. Verified with node:crypto rather than a
 * general JOSE library: one algorithm, no key lookup, and it runs on every request.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { ApiError } from './errors.ts';

export interface Principal {
  user: string;
  admin: boolean;
}

const HEADER = Buffer.from(JSON.stringify({ alg: 'HS256', typ: 'JWT' })).toString('base64url');
const MAX_TOKEN_LENGTH = 4096;
const MAX_USER_LENGTH = 128;

function sign(secret: string, input: string): Buffer {
  return createHmac('sha256', secret).update(input).digest();
}

/** A token for `sub`; `expiresIn` in seconds (none: does not expire). Used by the orchestrator and test clients. */
export function signToken(secret: string, sub: string, options: { role?: 'admin'; expiresIn?: number } = {}): string {
  const now = Math.floor(Date.now() / 1000);
  const claims: Record<string, unknown> = { sub, iat: now };
  if (options.role) claims.role = options.role;
  if (options.expiresIn !== undefined) claims.exp = now + options.expiresIn;
  const input = `${HEADER}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`;
  return `${input}.${sign(secret, input).toString('base64url')}`;
}

function unauthorized(code: string, message: string): ApiError {
  return new ApiError(401, code, message, { 'www-authenticate': `Bearer error="invalid_token", error_description="${message}"` });
}

interface Verified {
  principal: Principal;
  /** Seconds since the epoch; Infinity when the token does not expire. */
  expires: number;
}

const VERIFIED_MAX = 50_000;

/**
 * Authenticates `Authorization` headers against one secret. Headers whose token this instance
 * already verified are remembered by their exact text (signature included), so only the bytes that
 * verified can hit; expiry is still checked on every use. Clients send the same token on every
 * request, and the HMAC and two JSON parses are most of the cost of authenticating one.
 */
export class Authenticator {
  private readonly verified = new Map<string, Verified>();

  constructor(private readonly secret: string) {}

  /** The principal of an `Authorization` header, or a 401 saying precisely what is wrong with it. */
  authenticate(authorization: string | undefined): Principal {
    if (!authorization) throw new ApiError(401, 'missing-token', 'Authorization header with a Bearer token is required', { 'www-authenticate': 'Bearer' });
    const known = this.verified.get(authorization);
    if (known && known.expires > Date.now() / 1000) return known.principal;
    if (!authorization.startsWith('Bearer ')) throw unauthorized('bad-token', 'Authorization must use the Bearer scheme');
    const result = verify(this.secret, authorization.slice(7).trim());
    if (this.verified.size >= VERIFIED_MAX) this.verified.clear();
    this.verified.set(authorization, result);
    return result.principal;
  }
}

function verify(secret: string, token: string): Verified {
  if (token.length > MAX_TOKEN_LENGTH) throw unauthorized('bad-token', `token is longer than ${MAX_TOKEN_LENGTH} characters`);
  const parts = token.split('.');
  if (parts.length !== 3) throw unauthorized('bad-token', 'token is not a JWT (expected three dot-separated parts)');
  const [header, payload, signature] = parts as [string, string, string];
  let alg: unknown;
  let claims: Record<string, unknown>;
  try {
    alg = (JSON.parse(Buffer.from(header, 'base64url').toString('utf8')) as { alg?: unknown }).alg;
    claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as Record<string, unknown>;
  } catch {
    throw unauthorized('bad-token', 'token header or payload is not base64url JSON');
  }
  if (alg !== 'HS256') throw unauthorized('bad-token', `token algorithm must be HS256, got ${JSON.stringify(alg)}`);
  const expected = sign(secret, `${header}.${payload}`);
  const given = Buffer.from(signature, 'base64url');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    throw unauthorized('bad-signature', 'token signature does not verify with this server\'s secret');
  }
  if (typeof claims !== 'object' || claims === null) throw unauthorized('bad-token', 'token payload is not a JSON object');
  const now = Date.now() / 1000;
  if (claims.exp !== undefined && (typeof claims.exp !== 'number' || claims.exp <= now)) {
    throw unauthorized('token-expired', typeof claims.exp === 'number' ? `token expired at ${new Date(claims.exp * 1000).toISOString()}` : 'token claim exp is not a number');
  }
  if (claims.nbf !== undefined && (typeof claims.nbf !== 'number' || claims.nbf > now)) {
    throw unauthorized('token-not-yet-valid', 'token is not valid yet (nbf)');
  }
  const sub = claims.sub;
  if (typeof sub !== 'string' || sub.length === 0 || sub.length > MAX_USER_LENGTH) {
    throw unauthorized('bad-token', `token claim sub must be a user id of 1-${MAX_USER_LENGTH} characters`);
  }
  return { principal: { user: sub, admin: claims.role === 'admin' }, expires: typeof claims.exp === 'number' ? claims.exp : Infinity };
}
