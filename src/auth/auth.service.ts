import { Inject, Injectable, Logger } from '@nestjs/common';
import { validationProblem } from '../http/problem';
import type { Role } from '../users/entities/user.entity';
import { APP_CONFIG, type AppConfig } from '../config/app.config';
import { AccountsRepository } from './accounts.repository';
import { type Caller, isAdmin } from './caller';
import { accountKey, LoginThrottle, unknownAccountKey } from './login-throttle';
import { PasswordHasher } from './passwords';
import { forbidden, invalidCredentials, invalidToken } from './problems';
import { SessionActivity } from './session-activity';
import { SessionsRepository } from './sessions.repository';
import { AccessTokens, newRefreshToken, refreshTokenHash, type TokenPair } from './tokens';

/** Refresh tokens as issued: 32 random bytes in base64url. Anything else is not worth a query. */
const REFRESH_TOKEN = /^[\w-]{43}$/;

/** The identity part of a user update, checked and ready to store (see AuthService.accountChange). */
export interface AccountChange {
  passwordHash?: string;
  role?: Role;
  /** After a password change every session of the user ends but this one (the caller's own). */
  keepSessionId?: string;
}

/** Login, refresh rotation, logout, and turning an access token into a Caller. */
@Injectable()
export class AuthService {
  private readonly logger = new Logger(AuthService.name);

  constructor(
    private readonly accounts: AccountsRepository,
    private readonly sessions: SessionsRepository,
    private readonly passwords: PasswordHasher,
    private readonly tokens: AccessTokens,
    private readonly throttle: LoginThrottle,
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
    const key = account ? accountKey(account.id) : unknownAccountKey(email);
    await this.throttle.reserve(key, client);
    if (!(await this.passwords.verify(account?.passwordHash, password)) || !account) throw invalidCredentials();
    await this.throttle.refund(key, client);
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
    const rejected = invalidToken('The refresh token is invalid, expired or revoked');
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

  /**
   * Checks the identity fields of `PATCH /users/{id}` (the caller may act as the user already):
   * a new `password` needs the `currentPassword` (400 when missing, 403 when wrong) unless an admin
   * sets it, and only admins change roles (403); wrong guesses count against the account's login limit
   * (429). `client`: the caller's IP. Returns what to store, the new password hashed.
   */
  async accountChange(
    caller: Caller,
    userId: number,
    change: { password?: string; currentPassword?: string; role?: Role },
    client: string,
  ): Promise<AccountChange> {
    if (change.role !== undefined && !isAdmin(caller)) throw forbidden('Only admins can change roles');
    if (change.password === undefined) return { role: change.role };
    if (!isAdmin(caller)) {
      if (change.currentPassword === undefined) {
        throw validationProblem([
          { field: 'currentPassword', messages: ['currentPassword is needed to change password'] },
        ]);
      }
      // A stolen access token must not turn this into an unlimited password oracle: the same
      // per-account guess limit as login (`client`: the caller's IP).
      await this.throttle.reserve(accountKey(userId), client);
      const current = await this.accounts.findPasswordHash(userId);
      if (!(await this.passwords.verify(current, change.currentPassword))) throw forbidden('currentPassword is wrong');
      await this.throttle.refund(accountKey(userId), client);
    }
    return {
      passwordHash: await this.passwords.hash(change.password),
      role: change.role,
      keepSessionId: caller.id === userId ? caller.sessionId : undefined,
    };
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
