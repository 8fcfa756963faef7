import { Inject, Injectable } from '@nestjs/common';
import { JwtService } from '@nestjs/jwt';
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { APP_CONFIG, type AppConfig } from '../config/app.config';
import { invalidToken } from './problems';

/** `iss` and `aud` of every access token; tokens for another issuer or audience are refused. */
export const TOKEN_ISSUER = 'nest-typeorm-users';
export const TOKEN_AUDIENCE = 'nest-typeorm-users-api';
/** The only algorithm signed and accepted: `none` and algorithm confusion cannot apply. */
export const TOKEN_ALGORITHM = 'HS256';

/** What a verified access token says: whose it is and which session it belongs to. */
export interface AccessClaims {
  userId: number;
  sessionId: string;
}

/** What login and refresh answer (RFC 6749 §5.1 names). */
export interface TokenPair {
  accessToken: string;
  tokenType: 'Bearer';
  /** Seconds until the access token expires. */
  expiresIn: number;
  refreshToken: string;
}

const SESSION_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** The JWS header of every token we sign (jsonwebtoken writes exactly these two parameters). */
const ISSUED_HEADER: Readonly<Record<string, unknown>> = { alg: TOKEN_ALGORITHM, typ: 'JWT' };

/**
 * Access tokens: short-lived HS256 JWTs (@nestjs/jwt, i.e. jsonwebtoken) naming the user and the
 * session; also derives refresh tokens' successors (see refreshSuccessor).
 */
@Injectable()
export class AccessTokens {
  private readonly successorKey: Buffer;

  constructor(
    private readonly jwt: JwtService,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {
    // Its own key, derived from JWT_SECRET (a separate purpose); without one, a key of this process.
    const secret = config.auth.jwtSecret;
    this.successorKey = secret
      ? createHmac('sha256', secret).update('refresh-token-successor').digest()
      : randomBytes(32);
  }

  get ttlSeconds(): number {
    return this.config.auth.accessTokenTtlSeconds;
  }

  /** A signed JWT with `sub` (user id), `sid` (session id), `iss`, `aud`, `iat`, `exp`. */
  sign({ userId, sessionId }: AccessClaims): string {
    return this.jwt.sign({ sid: sessionId }, { subject: String(userId) });
  }

  /**
   * Checks the JWS header (exactly what we issue: `alg` HS256, `typ` JWT, nothing else, so no `crit`
   * extension we do not implement, RFC 7515 §4.1.11, and no `kid`/`jku`/`jwk`/`x5u` pointing
   * elsewhere), the signature (HS256 only), `iss`, `aud` and `exp` (required), and the claims' shapes.
   * Throws the 401 invalid_token problem (RFC 6750 §3.1) for anything else.
   */
  verify(token: string): AccessClaims {
    if (!hasIssuedHeader(token)) throw invalidToken('The access token has a header this server does not issue');
    let payload: { sub?: unknown; sid?: unknown; exp?: unknown };
    try {
      payload = this.jwt.verify(token);
    } catch (error) {
      const expired = (error as Error).name === 'TokenExpiredError';
      throw invalidToken(expired ? 'The access token has expired' : 'The access token is invalid');
    }
    const userId = typeof payload.sub === 'string' && /^[1-9]\d{0,9}$/.test(payload.sub) ? Number(payload.sub) : NaN;
    if (!Number.isSafeInteger(userId) || typeof payload.exp !== 'number' || !SESSION_ID.test(String(payload.sid))) {
      throw invalidToken('The access token is invalid');
    }
    return { userId, sessionId: String(payload.sid) };
  }

  /**
   * The refresh token that succeeds `token` when it is rotated: HMAC-SHA256 of it under a server key,
   * base64url (43 characters, like newRefreshToken's). Deterministic, so a duplicate refresh of the
   * same token within the grace window gets the very successor the first one got (the server keeps
   * only hashes and could not hand it out again otherwise); unpredictable without the key, so an
   * old token does not reveal its successor.
   */
  refreshSuccessor(token: string): { token: string; hash: Buffer } {
    const successor = createHmac('sha256', this.successorKey).update(token).digest('base64url');
    return { token: successor, hash: refreshTokenHash(successor) };
  }
}

/** Whether the token's JWS header (its first segment) holds exactly the parameters ISSUED_HEADER has. */
function hasIssuedHeader(token: string): boolean {
  let header: unknown;
  try {
    header = JSON.parse(Buffer.from(token.split('.', 1)[0], 'base64url').toString('utf8'));
  } catch {
    return false;
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) return false;
  const entries = Object.entries(header);
  return (
    entries.length === Object.keys(ISSUED_HEADER).length &&
    entries.every(([key, value]) => Object.hasOwn(ISSUED_HEADER, key) && ISSUED_HEADER[key] === value)
  );
}

/** A new opaque refresh token: 256 random bits, base64url (43 characters), and the hash that is stored. */
export function newRefreshToken(): { token: string; hash: Buffer } {
  const token = randomBytes(32).toString('base64url');
  return { token, hash: refreshTokenHash(token) };
}

/** SHA-256 of a refresh token: what the refresh_tokens table stores and is searched by. */
export function refreshTokenHash(token: string): Buffer {
  return createHash('sha256').update(token).digest();
}
