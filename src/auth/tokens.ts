import { Inject, Injectable } from '@nestjs/common';
import { JwtService } from '@nestjs/jwt';
import { createHash, randomBytes } from 'node:crypto';
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

/** Access tokens: short-lived HS256 JWTs (@nestjs/jwt, i.e. jsonwebtoken) naming the user and the session. */
@Injectable()
export class AccessTokens {
  constructor(
    private readonly jwt: JwtService,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  get ttlSeconds(): number {
    return this.config.auth.accessTokenTtlSeconds;
  }

  /** A signed JWT with `sub` (user id), `sid` (session id), `iss`, `aud`, `iat`, `exp`. */
  sign({ userId, sessionId }: AccessClaims): string {
    return this.jwt.sign({ sid: sessionId }, { subject: String(userId) });
  }

  /**
   * Checks signature (HS256 only), `iss`, `aud` and `exp` (required), and the claims' shapes.
   * Throws the 401 invalid_token problem (RFC 6750 §3.1) for anything else.
   */
  verify(token: string): AccessClaims {
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
