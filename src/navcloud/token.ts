/**
 * The sync service's bearer tokens: HS256 JWTs signed with the stack's shared secret. This is the
 * one signer, used by the orchestrator's admin client, the smoke tests, the synthetic clients and
 * the tests; the server verifies (server/auth.ts) against the limits defined here.
 */
import { SignJWT } from 'jose';

/** The server refuses to start with a shorter secret: HS256 needs a key as long as its hash. */
export const MIN_SECRET_BYTES = 32;
/** Admin tokens are short-lived: the server refuses one whose exp is further away than this. */
export const ADMIN_TOKEN_MAX_SECONDS = 900;
/** A user token's lifetime unless told. */
export const USER_TOKEN_SECONDS = 3600;

export interface TokenOptions {
  admin?: boolean;
  /** Seconds from now to `exp` (negative: already expired); default 1 h for users, ADMIN_TOKEN_MAX_SECONDS for admins. */
  expiresIn?: number;
  /** Seconds from now to `nbf`. */
  notBefore?: number;
}

/** A token for `subject` (a user id, or the operator's name for admin tokens). */
export async function signToken(secret: string, subject: string, options: TokenOptions = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const claims: Record<string, unknown> = {};
  if (options.admin) claims.role = 'admin';
  const jwt = new SignJWT(claims)
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(subject)
    .setIssuedAt(now)
    .setExpirationTime(now + (options.expiresIn ?? (options.admin ? ADMIN_TOKEN_MAX_SECONDS : USER_TOKEN_SECONDS)));
  if (options.notBefore !== undefined) jwt.setNotBefore(now + options.notBefore);
  return jwt.sign(new TextEncoder().encode(secret));
}
