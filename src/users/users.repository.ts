import { Inject, Injectable } from '@nestjs/common';
import { TransactionHost } from '@nestjs-cls/transactional';
import type { TransactionalAdapterTypeOrm } from '@nestjs-cls/transactional-adapter-typeorm';
import { InjectRepository } from '@nestjs/typeorm';
import type { Repository } from 'typeorm';
import { ReadRouter } from '../database/reads/read-routing';
import type { SqlDialect } from '../database/dialects/dialect';
import { SQL_DIALECT } from '../database/dialects/sql-dialect.module';
import { inCurrentTransaction } from '../database/transactions/transactions';
import { deleteIfMatch, requirePreconditions, updateIfMatch } from '../database/transactions/versioned-writes';
import type { Preconditions } from '../http/conditional-requests';
import type { PageStart } from '../http/pagination';
import { Profile } from './entities/profile.entity';
import { User } from './entities/user.entity';

/** The columns a client may set on a user row. */
export type UserValues = Pick<User, 'name' | 'email'> & Partial<Pick<User, 'passwordHash' | 'role'>>;
/** The columns a client may set on a profile row. */
export type ProfileValues = Partial<Pick<Profile, 'bio' | 'avatarUrl'>>;

/**
 * The user row every user read and write starts with, as plain SQL (for speed: ADR 0002,
 * BENCHMARKS.md). Columns are aliased to User's properties and PostgreSQL builds `profile` as the
 * object the repository would load (null without one), so rows come back as Users with no mapping;
 * a test checks they equal what the repository loads. The portable variant (MySQL, SQLite) selects
 * the profile's columns flat and withProfile() nests them.
 */
const USER_COLUMNS =
  'u.id, u.name, u.email, u.email_verified AS "emailVerified", u.role, u.created_at AS "createdAt", u.updated_at AS "updatedAt", u.version';

/** One dialect's statements. */
type Statements = { users: string; usersWithProfiles: string; byId: string; page: string; pageAfter: string };

/** The statements MySQL/MariaDB and SQLite share: `?` placeholders, no arrays or JSON building. */
const PORTABLE_SQL: Statements = {
  users: `SELECT ${USER_COLUMNS} FROM users u`,
  usersWithProfiles:
    `SELECT ${USER_COLUMNS}, p.user_id AS "profileUserId", p.bio AS "profileBio", p.avatar_url AS "profileAvatarUrl" ` +
    'FROM users u LEFT JOIN profiles p ON p.user_id = u.id',
  byId: 'WHERE u.id = ?',
  page: 'ORDER BY u.name, u.id LIMIT ? OFFSET ?',
  // The row comparison spelled out, which MySQL's optimizer turns into a range on the index.
  pageAfter: 'WHERE (u.name > ? OR (u.name = ? AND u.id > ?)) ORDER BY u.name, u.id LIMIT ?',
};

/** Which statements each dialect takes (see database/dialects/sql-dialect.ts). */
const SQL: Record<SqlDialect, Statements> = {
  postgres: {
    users: `SELECT ${USER_COLUMNS} FROM users u`,
    usersWithProfiles:
      `SELECT ${USER_COLUMNS}, CASE WHEN p.user_id IS NULL THEN NULL ELSE ` +
      `json_build_object('userId', p.user_id, 'bio', p.bio, 'avatarUrl', p.avatar_url) END AS profile ` +
      'FROM users u LEFT JOIN profiles p ON p.user_id = u.id',
    byId: 'WHERE u.id = $1',
    /** Ties page stably; index users_name_id_idx. */
    page: 'ORDER BY u.name, u.id LIMIT $1 OFFSET $2',
    /** The keyset page after ($2, $3): a range scan of users_name_id_idx, whatever the table's size. */
    pageAfter: 'WHERE (u.name, u.id) > ($2, $3) ORDER BY u.name, u.id LIMIT $1',
  },
  mysql: PORTABLE_SQL,
  sqlite: PORTABLE_SQL,
};

/** A portable row with the profile's columns flat. */
type FlatUserRow = User & { profileUserId?: number | null; profileBio?: string; profileAvatarUrl?: string | null };

/**
 * All SQL for the `users` and `profiles` tables. Every statement runs in the caller's transaction
 * when one is open (`txHost.tx`, see inCurrentTransaction), else on the pool; the service decides
 * where transactions begin and end. Reads go through ReadRouter: a GET's may be served by a replica.
 */
@Injectable()
export class UsersRepository {
  private readonly sql: Statements;

  constructor(
    @InjectRepository(User) private readonly users: Repository<User>,
    @InjectRepository(Profile) private readonly profiles: Repository<Profile>,
    private readonly txHost: TransactionHost<TransactionalAdapterTypeOrm>,
    private readonly reads: ReadRouter,
    @Inject(SQL_DIALECT) private readonly dialect: SqlDialect,
  ) {
    this.sql = SQL[this.dialect];
  }

  /**
   * One user by id, or null. With `withProfile`, `profile` comes from a LEFT JOIN in the same
   * statement (null when the user has none); without, it is absent.
   */
  async findById(id: number, withProfile: boolean): Promise<User | null> {
    const [user] = await this.read(`${this.select(withProfile)} ${this.sql.byId}`, [id], withProfile);
    return user ?? null;
  }

  /**
   * At most `limit` users from `start` (an offset, or strictly after a `[name, id]` keyset position),
   * ordered by name then id, in one statement on users_name_id_idx (`profile` as findById). The only
   * join is one-to-one, so LIMIT counts users.
   */
  findPage(limit: number, start: PageStart, withProfile: boolean): Promise<User[]> {
    if ('offset' in start) {
      return this.read(`${this.select(withProfile)} ${this.sql.page}`, [limit, start.offset], withProfile);
    }
    const [name, id] = start.after;
    const parameters = this.dialect === 'postgres' ? [limit, name, id] : [name, name, id, limit];
    return this.read(`${this.select(withProfile)} ${this.sql.pageAfter}`, parameters, withProfile);
  }

  /**
   * `INSERT INTO users … RETURNING` the whole row: the user as stored (id, timestamps, version),
   * without relations. A taken email fails on users_email_lower_key (409). Portable: the INSERT, then
   * the row selected by its new id (in the caller's transaction when there is one).
   */
  async insert({ name, email, passwordHash = null }: UserValues): Promise<User> {
    const users = inCurrentTransaction(this.txHost, this.users);
    if (this.dialect !== 'postgres') {
      const { identifiers } = await users.insert({ name, email, passwordHash });
      const [user] = await users.query<User[]>(`${this.sql.users} ${this.sql.byId}`, [identifiers[0].id]);
      return withBooleans(user);
    }
    // The hash goes in, never back out: RETURNING leaves password_hash out.
    const [user] = await users.query<User[]>(
      'INSERT INTO users (name, email, password_hash) VALUES ($1, $2, $3) RETURNING id, name, email, email_verified AS "emailVerified", role, created_at AS "createdAt", updated_at AS "updatedAt", version',
      [name, email, passwordHash],
    );
    return user;
  }

  /**
   * Version-checked `UPDATE users` (see updateIfMatch): bumps version and updated_at even when
   * `values` is empty, and locks the row for the rest of the transaction. 404/412 when no row matched.
   */
  update(id: number, values: Partial<UserValues>, conditions: Preconditions | undefined): Promise<void> {
    return updateIfMatch(inCurrentTransaction(this.txHost, this.users), id, values, conditions);
  }

  /**
   * If-Match / If-None-Match against the user row as it is now (see requirePreconditions): for a
   * write refused by a rule before its version-checked statement runs. 404/412; nothing without conditions.
   */
  requirePreconditions(id: number, conditions: Preconditions | undefined): Promise<void> {
    return requirePreconditions(inCurrentTransaction(this.txHost, this.users), id, conditions);
  }

  /**
   * Version-checked `DELETE FROM users` (404/412 as deleteIfMatch); profile, posts and comments
   * (also the user's comments on others' posts) go by ON DELETE CASCADE. First locks those comments
   * in id order (`SELECT … ORDER BY id FOR UPDATE`): two users deleted at once who commented on each
   * other's posts then queue instead of deadlocking. Must run inside a transaction, or the locks end
   * with the SELECT. `= ANY(ARRAY(…))` rather than `IN (…)`: the post ids become one value, so both
   * sides of the OR use their index (a BitmapOr); with IN, PostgreSQL filtered every comment.
   */
  async delete(id: number, conditions: Preconditions | undefined): Promise<void> {
    const users = inCurrentTransaction(this.txHost, this.users);
    if (this.dialect === 'postgres') {
      await users.query(
        'SELECT 1 FROM comments WHERE author_id = $1 OR post_id = ANY(ARRAY(SELECT id FROM posts WHERE author_id = $1)) ORDER BY id FOR UPDATE',
        [id],
      );
    } else if (this.dialect === 'mysql') {
      // The user's posts first, as a comment insert locks its post first (the keyset trigger), then
      // the comments in id order: concurrent deletes and comment inserts queue instead of deadlocking.
      // SQLite takes no row locks: its single writer already serializes these transactions.
      await users.query('SELECT 1 FROM posts WHERE author_id = ? ORDER BY id FOR UPDATE', [id]);
      await users.query(
        'SELECT 1 FROM comments WHERE author_id = ? OR post_id IN (SELECT id FROM posts WHERE author_id = ?) ORDER BY id FOR UPDATE',
        [id, id],
      );
    }
    await deleteIfMatch(users, id, conditions);
  }

  /**
   * `INSERT INTO profiles … RETURNING` for a user that has none: the profile as stored, the
   * column defaults (bio '') included.
   */
  async insertProfile(userId: number, values: ProfileValues): Promise<Profile> {
    const profiles = inCurrentTransaction(this.txHost, this.profiles);
    if (this.dialect !== 'postgres') {
      await profiles.insert({ userId, ...values });
      return profiles.findOneByOrFail({ userId });
    }
    const { raw } = await profiles
      .createQueryBuilder()
      .insert()
      .values({ userId, ...values })
      .returning('user_id AS "userId", bio, avatar_url AS "avatarUrl"')
      .execute();
    return (raw as Profile[])[0];
  }

  /** `INSERT … ON CONFLICT (user_id) DO UPDATE`: creates or replaces the user's profile. */
  async upsertProfile(userId: number, values: ProfileValues): Promise<void> {
    await inCurrentTransaction(this.txHost, this.profiles).upsert({ userId, ...values }, { conflictPaths: ['userId'] });
  }

  /** `DELETE FROM profiles WHERE user_id = $1`; no profile is not an error. */
  async deleteProfile(userId: number): Promise<void> {
    await inCurrentTransaction(this.txHost, this.profiles).delete({ userId });
  }

  private select(withProfile: boolean): string {
    return withProfile ? this.sql.usersWithProfiles : this.sql.users;
  }

  /**
   * A plain-SQL read (rows aliased to User's properties) where ReadRouter sends it; portable rows with
   * a profile get it nested as PostgreSQL's json_build_object would (null without one).
   */
  private async read(sql: string, parameters: unknown[], withProfile: boolean): Promise<User[]> {
    const rows = await this.reads.query<FlatUserRow>(sql, parameters);
    if (this.dialect === 'postgres') return rows;
    if (!withProfile) return rows.map(withBooleans);
    return rows.map(({ profileUserId, profileBio, profileAvatarUrl, ...user }) =>
      Object.assign(withBooleans(user), {
        profile:
          profileUserId == null
            ? null
            : { userId: profileUserId, bio: profileBio, avatarUrl: profileAvatarUrl ?? null },
      }),
    );
  }
}

/** MySQL and SQLite answer a boolean column as 0/1 in plain SQL: as the entity holds it. */
function withBooleans<T extends User>(user: T): T {
  user.emailVerified = Boolean(user.emailVerified);
  return user;
}
