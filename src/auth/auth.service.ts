import { Inject, Injectable, Logger } from '@nestjs/common';
import { APP_CONFIG, type AppConfig } from '../config/app.config';
import { AccountsRepository } from './accounts.repository';
import type { Caller } from './caller';
import { PasswordHasher } from './passwords';
import { invalidCredentials, invalidToken } from './problems';
import { SessionActivity } from './session-activity';
import { SessionsRepository } from './sessions.repository';
import { accountKey, addressKey, Throttles } from './throttles';
import { AccessTokens, newRefreshToken, refreshTokenHash, type TokenPair } from './tokens';

/** Refresh tokens as issued: 32 random bytes in base64url. Anything else is not worth a query. */
const REFRESH_TOKEN = /^[\w-]{43}$/;

/** Login, refresh rotation, logout, and turning an access token into a Caller. */
@Injectable()
export class AuthService {
  private readonly logger = new Logger(AuthService.name);

  constructor(
    private readonly accounts: AccountsRepository,
    private readonly sessions: SessionsRepository,
    private readonly passwords: PasswordHasher,
    private readonly tokens: AccessTokens,
    private readonly throttles: Throttles,
    private readonly activity: SessionActivity,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  /**
   * A new session for the account, or 401 — the same answer after the same work whether the email
   * is unknown or the password wrong (an unknown email is verified against a dummy hash). 429 while
   * the account or the client (`client`: its IP) has too many recent failures. `userAgent`: the
   * request's User-Agent, kept with the session (GET /auth/sessions).
   */
  async login(email: string, password: string, client: string, userAgent?: string): Promise<TokenPair> {
    const account = await this.accounts.findByEmail(email);
    const key = account ? accountKey(account.id) : addressKey(email);
    await this.throttles.login.reserve(key, client);
    if (!(await this.passwords.verify(account?.passwordHash, password)) || !account) throw invalidCredentials();
    await this.throttles.login.refund(key, client);
    const refresh = newRefreshToken();
    const sessionId = await this.sessions.create(
      account.id,
      this.config.auth.sessionTtlSeconds,
      refresh.hash,
      userAgent,
    );
    return this.pair(account.id, sessionId, refresh.token);
  }

  /**
   * Rotates a refresh token: a new pair, and the presented token stops working. Presented again
   * within REFRESH_GRACE_SECONDS of its rotation while its successor is still unused (two tabs at
   * once, a retry after a lost response), it gets that same successor and a new access token of the
   * session. Otherwise a token that was already rotated revokes its whole session (someone else has
   * its successor; RFC 9700 §4.14.2); either way 401.
   */
  async refresh(refreshToken: string): Promise<TokenPair> {
    const rejected = invalidToken('The refresh token is invalid, expired or revoked', 'refreshToken');
    if (!REFRESH_TOKEN.test(refreshToken)) throw rejected;
    const presented = refreshTokenHash(refreshToken);
    const next = this.tokens.refreshSuccessor(refreshToken);
    const grace = this.config.auth.refreshGraceSeconds;
    const rotated =
      (await this.sessions.rotate(presented, next.hash)) ??
      (grace > 0 ? await this.sessions.findRecentlyRotated(presented, next.hash, grace) : undefined);
    if (rotated) return this.pair(rotated.userId, rotated.sessionId, next.token);
    if (await this.sessions.revokeIfReused(presented)) {
      this.logger.warn('A rotated refresh token was presented again: its session is revoked');
    }
    throw rejected;
  }

  /** Ends the caller's session: its refresh token and every access token of it stop working now. */
  logout(caller: Caller): Promise<void> {
    return this.sessions.revoke(caller.sessionId);
  }

  /**
   * The caller an access token stands for: a valid token (signature, iss, aud, exp) whose session is
   * still live and whose user still exists — one indexed lookup. 401 invalid_token otherwise.
   */
  async authenticate(accessToken: string): Promise<Caller> {
    const claims = this.tokens.verify(accessToken);
    const session = await this.sessions.findActive(claims.sessionId);
    if (!session || session.userId !== claims.userId) throw invalidToken('The session has ended: sign in again');
    await this.activity.used(claims.sessionId); // a write at most once a minute per session (SessionActivity)
    return { id: session.userId, role: session.role, sessionId: claims.sessionId };
  }

  private pair(userId: number, sessionId: string, refreshToken: string): TokenPair {
    return {
      accessToken: this.tokens.sign({ userId, sessionId }),
      tokenType: 'Bearer',
      expiresIn: this.tokens.ttlSeconds,
      refreshToken,
    };
  }
}
