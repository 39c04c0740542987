/**
 * Bearer JWTs (HS256, the stack's shared secret) verified with jose: HS256 only, `exp` required
 * (admin tokens at most ADMIN_TOKEN_MAX_SECONDS ahead), `exp`/`nbf` with a small clock tolerance,
 * `crit` refused, and each part exactly the base64url its bytes encode to (jose decodes leniently
 * where the runtime lacks Uint8Array.fromBase64: padding and stray low bits would pass).
 * Refusals carry fixed texts: nothing from the token reaches an answer's headers or body.
 */
import { errors, jwtVerify, type JWTPayload, type JWTHeaderParameters } from 'jose';
import { LRUCache } from 'lru-cache';
import { ADMIN_TOKEN_MAX_SECONDS, MIN_SECRET_BYTES } from '../src/navcloud/token.ts';
import { ApiError } from './errors.ts';
import { USER_ID } from './http/params.ts';

export interface Principal {
  user: string;
  admin: boolean;
}

const MAX_TOKEN_LENGTH = 4096;
const CLOCK_TOLERANCE_S = 5;
/** The cache of verified tokens: at most this many, holding at most this many bytes of tokens. */
const CACHE_ENTRIES = 20_000;
const CACHE_BYTES = 16 * 1024 * 1024;
/** What an entry costs beside its token's characters (two bytes each): the principal and the LRU's bookkeeping. */
const ENTRY_OVERHEAD_BYTES = 200;
const CACHE_TTL_MAX_MS = 3_600_000;
const BASE64URL = /^[A-Za-z0-9_-]*$/;

const CHALLENGE = { 'www-authenticate': 'Bearer error="invalid_token"' };

function unauthorized(code: string, message: string): ApiError {
  return new ApiError(401, code, message, CHALLENGE);
}

/** A secret too short for HS256; the node refuses to start with it. */
export function describeSecretProblem(secret: string): string | undefined {
  const bytes = Buffer.byteLength(secret, 'utf8');
  if (bytes < MIN_SECRET_BYTES)
    return `SYNC_JWT_SECRET must be at least ${MIN_SECRET_BYTES} bytes long (HS256 needs a key as long as its hash), got ${bytes}`;
  return undefined;
}

function exactBase64url(part: string): boolean {
  return BASE64URL.test(part) && Buffer.from(part, 'base64url').toString('base64url') === part;
}

/** A fixed refusal for what jose or our own checks found wrong; never the library's text (it can quote the token). */
function refusal(error: unknown): ApiError {
  if (error instanceof ApiError) return error;
  if (error instanceof errors.JWTExpired) return unauthorized('token-expired', 'token has expired (exp)');
  if (error instanceof errors.JWTClaimValidationFailed) {
    if (error.claim === 'nbf') return unauthorized('token-not-yet-valid', 'token is not valid yet (nbf)');
    if (error.claim === 'exp') return unauthorized('bad-token', 'token must carry a numeric exp claim');
    if (error.claim === 'sub') return unauthorized('bad-token', 'token must carry a sub claim');
    return unauthorized('bad-token', 'token claims are invalid');
  }
  if (error instanceof errors.JWSSignatureVerificationFailed)
    return unauthorized('bad-signature', "token signature does not verify with this server's secret");
  if (error instanceof errors.JOSEAlgNotAllowed) return unauthorized('bad-token', 'token algorithm must be HS256');
  if (error instanceof errors.JOSENotSupported)
    return unauthorized('bad-token', 'token uses an unsupported JOSE feature');
  return unauthorized('bad-token', 'token is not a valid JWT');
}

/**
 * Authenticates `Authorization` headers against one secret. Tokens this instance verified are
 * remembered by their exact text until they expire (clients send the same token on every request,
 * and verifying is most of the cost of authenticating one); the cache is bounded in entries and in
 * bytes, least recently used first out.
 */
export class Authenticator {
  private readonly key: Uint8Array;
  private readonly verified = new LRUCache<string, Principal>({
    max: CACHE_ENTRIES,
    maxSize: CACHE_BYTES,
    sizeCalculation: (_principal, token) => token.length * 2 + ENTRY_OVERHEAD_BYTES,
    ttlAutopurge: false,
  });

  constructor(secret: string) {
    const problem = describeSecretProblem(secret);
    if (problem) throw new Error(problem);
    this.key = new TextEncoder().encode(secret);
  }

  /** The principal of an `Authorization` header, or a 401 saying precisely what is wrong with it. */
  async authenticate(authorization: string | undefined): Promise<Principal> {
    if (!authorization)
      throw new ApiError(401, 'missing-token', 'Authorization header with a Bearer token is required', {
        'www-authenticate': 'Bearer',
      });
    if (!authorization.startsWith('Bearer '))
      throw unauthorized('bad-token', 'Authorization must use the Bearer scheme');
    const token = authorization.slice(7).trim();
    const known = this.verified.get(token);
    if (known) return known;
    const { principal, expiresAt } = await this.verify(token).catch((error: unknown) => {
      throw refusal(error);
    });
    // Until the token expires, but at most an hour: exp may be 1e300, and a verified token is looked at again hourly.
    const ttl = Math.min(CACHE_TTL_MAX_MS, Math.floor(expiresAt * 1000 - Date.now()));
    if (ttl > 0) this.verified.set(token, principal, { ttl });
    return principal;
  }

  private async verify(token: string): Promise<{ principal: Principal; expiresAt: number }> {
    if (token.length > MAX_TOKEN_LENGTH)
      throw unauthorized('bad-token', `token is longer than ${MAX_TOKEN_LENGTH} characters`);
    const parts = token.split('.');
    if (parts.length !== 3) throw unauthorized('bad-token', 'token is not a JWT (expected three dot-separated parts)');
    if (!parts.every(exactBase64url)) throw unauthorized('bad-token', 'token parts must be exact unpadded base64url');
    const { payload } = await jwtVerify(
      token,
      (header: JWTHeaderParameters) => {
        if (header.crit !== undefined) throw unauthorized('bad-token', 'token header crit is not accepted');
        return this.key;
      },
      { algorithms: ['HS256'], clockTolerance: CLOCK_TOLERANCE_S, requiredClaims: ['exp', 'sub'] },
    );
    return { principal: principalOf(payload), expiresAt: payload.exp! };
  }
}

function principalOf(claims: JWTPayload): Principal {
  const { sub } = claims;
  if (typeof sub !== 'string' || !USER_ID.test(sub)) {
    throw unauthorized(
      'bad-token',
      'token claim sub must be a user id of 1-128 characters without spaces, slashes or control characters',
    );
  }
  const admin = claims.role === 'admin';
  if (admin && claims.exp! - Date.now() / 1000 > ADMIN_TOKEN_MAX_SECONDS + CLOCK_TOLERANCE_S) {
    throw unauthorized('bad-token', `admin tokens may live at most ${ADMIN_TOKEN_MAX_SECONDS} s: exp is too far ahead`);
  }
  return { user: sub, admin };
}
