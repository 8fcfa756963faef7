import { Injectable } from '@nestjs/common';
import { validationProblem } from '../http/problem';
import type { Role } from '../users/entities/user.entity';
import { AccountsRepository } from './accounts.repository';
import { type Caller, isAdmin } from './caller';
import { EmailVerification } from './email-verification';
import { PasswordHasher } from './passwords';
import { forbidden } from './problems';
import { SessionsRepository } from './sessions.repository';
import { accountKey, Throttles } from './throttles';

/** The identity fields of a user update (PATCH /users/{id}), as the client sent them. */
export interface IdentityChange {
  email?: string;
  password?: string;
  currentPassword?: string;
  role?: Role;
}

/** The identity columns of the users row, as the update's one version-checked UPDATE stores them. */
export interface IdentityColumns {
  email?: string;
  passwordHash?: string;
  role?: Role;
}

/** An identity change checked by AccountsService.prepareChange, to apply in the update's transaction. */
export interface PreparedChange {
  readonly columns: IdentityColumns;
  /** The caller changes their own account and proved it with `currentPassword`. */
  readonly reauthenticated: boolean;
  /** The caller changes their own account (re-authentication applies to them; see prepareChange). */
  readonly own: boolean;
  /** After a password change every session of the user ends but this one (the caller's own). */
  readonly keepSessionId?: string;
}

/**
 * The one entry point through which another feature changes an account's identity — email, password,
 * role, sessions — or creates or deletes one (ADR 0016). The users feature calls it; it never reaches
 * into auth's repositories. Login, tokens, password reset and email verification stay behind /auth.
 */
@Injectable()
export class AccountsService {
  constructor(
    private readonly accounts: AccountsRepository,
    private readonly sessions: SessionsRepository,
    private readonly passwords: PasswordHasher,
    private readonly throttles: Throttles,
    private readonly verification: EmailVerification,
  ) {}

  /** A sign-up's password as stored (argon2id), computed before its transaction opens. */
  hashNewPassword(password: string): Promise<string> {
    return this.passwords.hash(password);
  }

  /** In the sign-up's transaction, after the INSERT: the verification token and mail commit with the user. */
  created(userId: number, email: string): Promise<void> {
    return this.verification.start(userId, email);
  }

  /**
   * Checks the identity fields of a user update (the caller may act as the user already; run it
   * before the transaction: it may hash and verify passwords). Only admins change roles (403). A user
   * changing their own `password`, or their `email` to another address (not merely its letter case), proves who they are with
   * `currentPassword` — admins too, on their own account — so a stolen access token alone cannot take
   * an account over: 400 naming `currentPassword` when it is missing, 403 when it is wrong, and wrong
   * guesses count against the account's login limit (429). An admin changing another user's email or
   * password needs no password of theirs (docs/security.md). `client`: the caller's IP.
   */
  async prepareChange(caller: Caller, userId: number, change: IdentityChange, client: string): Promise<PreparedChange> {
    const { email, password, currentPassword, role } = change;
    if (role !== undefined && !isAdmin(caller)) throw forbidden('Only admins can change roles');
    const own = caller.id === userId;
    let reauthenticated = false;
    if (own && (password !== undefined || email !== undefined)) {
      const stored = await this.accounts.findCredentials(userId);
      if (password !== undefined || !sameAddress(email, stored?.email)) {
        if (currentPassword === undefined) throw currentPasswordNeeded(password !== undefined ? 'password' : 'email');
        // A stolen access token must not turn this into an unlimited password oracle: the same
        // per-account guess limit as login.
        await this.throttles.login.reserve(accountKey(userId), client);
        if (!(await this.passwords.verify(stored?.passwordHash, currentPassword))) {
          throw forbidden('currentPassword is wrong');
        }
        await this.throttles.login.refund(accountKey(userId), client);
        reauthenticated = true;
      }
    }
    const passwordHash = password === undefined ? undefined : await this.passwords.hash(password);
    return {
      columns: { email, passwordHash, role },
      own,
      reauthenticated,
      keepSessionId: own ? caller.sessionId : undefined,
    };
  }

  /**
   * Applies a prepared change inside the caller's transaction, around `write` — the users feature's
   * one version-checked UPDATE of the row, given the identity columns to store. Before it: demoting the
   * last admin is refused (409), and for a new email the row is locked and its address read. After
   * it: a new password ends the user's other sessions; a new address is unverified, its verification
   * mail and a notice to the old address queued in the transaction.
   */
  async applyChange(
    userId: number,
    change: PreparedChange,
    write: (columns: IdentityColumns) => Promise<void>,
  ): Promise<void> {
    const { columns } = change;
    if (columns.role === 'user') await this.accounts.assertAnotherAdminRemains(userId);
    // The address before the change (the row locked from here on): it is told, the new one verified anew.
    const previous = columns.email === undefined ? undefined : await this.accounts.findEmailForUpdate(userId);
    // The address changed since prepareChange found it unchanged: that exemption no longer holds.
    if (previous && change.own && !change.reauthenticated && !sameAddress(columns.email, previous.email)) {
      throw currentPasswordNeeded('email');
    }
    await write(columns);
    if (columns.passwordHash) await this.sessions.revokeAllOf(userId, change.keepSessionId);
    if (previous && columns.email !== undefined) {
      await this.verification.emailChanged(userId, previous.email, columns.email);
    }
  }

  /** In the delete's transaction, before it: the last admin cannot be deleted (409). */
  assertMayRemove(userId: number): Promise<void> {
    return this.accounts.assertAnotherAdminRemains(userId);
  }
}

/**
 * One mailbox, as every dialect's unique index sees it: addresses in ASCII compare case-insensitively
 * (lower() agrees everywhere), others exactly — PostgreSQL, MariaDB and SQLite fold letters such as
 * final sigma or dotted I differently from JavaScript, so a "case-only" change there may name another
 * account's address, and must not skip re-authentication.
 */
function sameAddress(a: string | undefined, b: string | undefined): boolean {
  if (a === undefined || b === undefined) return false;
  return ASCII.test(a) && ASCII.test(b) ? a.toLowerCase() === b.toLowerCase() : a === b;
}

const ASCII = /^[ -~]*$/; // printable ASCII, where every dialect's lower() agrees with JavaScript's

/** 400 naming `currentPassword` (RFC 9110 §15.5.1): `field` cannot change without it. */
function currentPasswordNeeded(field: 'email' | 'password') {
  return validationProblem([{ field: 'currentPassword', messages: [`currentPassword is needed to change ${field}`] }]);
}
