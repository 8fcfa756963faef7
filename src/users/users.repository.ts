import { Injectable } from '@nestjs/common';
import { TransactionHost } from '@nestjs-cls/transactional';
import type { TransactionalAdapterTypeOrm } from '@nestjs-cls/transactional-adapter-typeorm';
import { InjectRepository } from '@nestjs/typeorm';
import type { Repository } from 'typeorm';
import { ReadRouter } from '../db/read-routing';
import { inCurrentTransaction } from '../db/transactions';
import { deleteIfMatch, updateIfMatch } from '../db/versioned-writes';
import type { Preconditions } from '../http/conditional-requests';
import { Profile } from './entities/profile.entity';
import { User } from './entities/user.entity';

/** The columns a client may set on a user row. */
export type UserValues = Pick<User, 'name' | 'email'> & Partial<Pick<User, 'passwordHash' | 'role'>>;
/** The columns a client may set on a profile row. */
export type ProfileValues = Partial<Pick<Profile, 'bio' | 'avatarUrl'>>;

/**
 * The user row every user read and write starts with, as plain SQL (for speed: building this
 * statement and hydrating the join was the largest share left of GET /users/{id}'s CPU,
 * BENCHMARKS.md). Columns are aliased to User's properties and PostgreSQL builds `profile` as the
 * object the repository would load (null without one), so rows come back as Users with no mapping;
 * a test checks they equal what the repository loads.
 */
const USER_COLUMNS =
  'u.id, u.name, u.email, u.role, u.created_at AS "createdAt", u.updated_at AS "updatedAt", u.version';
const USERS = `SELECT ${USER_COLUMNS} FROM users u`;
const USERS_WITH_PROFILES =
  `SELECT ${USER_COLUMNS}, CASE WHEN p.user_id IS NULL THEN NULL ELSE ` +
  `json_build_object('userId', p.user_id, 'bio', p.bio, 'avatarUrl', p.avatar_url) END AS profile ` +
  'FROM users u LEFT JOIN profiles p ON p.user_id = u.id';
/** Ties page stably; index users_name_id_idx. */
const PAGE = 'ORDER BY u.name, u.id LIMIT $1 OFFSET $2';

/**
 * All SQL for the `users` and `profiles` tables. Every statement runs in the caller's transaction
 * when one is open (`txHost.tx`, see inCurrentTransaction), else on the pool; the service decides
 * where transactions begin and end. Reads go through ReadRouter: a GET's may be served by a replica.
 */
@Injectable()
export class UsersRepository {
  constructor(
    @InjectRepository(User) private readonly users: Repository<User>,
    @InjectRepository(Profile) private readonly profiles: Repository<Profile>,
    private readonly txHost: TransactionHost<TransactionalAdapterTypeOrm>,
    private readonly reads: ReadRouter,
  ) {}

  /**
   * One user by id, or null. With `withProfile`, `profile` comes from a LEFT JOIN in the same
   * statement (null when the user has none); without, it is absent.
   */
  async findById(id: number, withProfile: boolean): Promise<User | null> {
    const [user] = await this.read(`${withProfile ? USERS_WITH_PROFILES : USERS} WHERE u.id = $1`, [id]);
    return user ?? null;
  }

  /**
   * At most `limit` users from `offset`, ordered by name then id, in one statement (`profile` as
   * findById). The only join is one-to-one, so LIMIT counts users.
   */
  findPage(limit: number, offset: number, withProfile: boolean): Promise<User[]> {
    return this.read(`${withProfile ? USERS_WITH_PROFILES : USERS} ${PAGE}`, [limit, offset]);
  }

  /**
   * `INSERT INTO users … RETURNING` the whole row: the user as stored (id, timestamps, version),
   * without relations. A taken email fails on users_email_lower_key (409).
   */
  async insert({ name, email, passwordHash = null }: UserValues): Promise<User> {
    // The hash goes in, never back out: RETURNING leaves password_hash out.
    const [user] = await inCurrentTransaction(this.txHost, this.users).query<User[]>(
      'INSERT INTO users (name, email, password_hash) VALUES ($1, $2, $3) RETURNING id, name, email, role, created_at AS "createdAt", updated_at AS "updatedAt", version',
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
   * Version-checked `DELETE FROM users` (404/412 as deleteIfMatch); profile, posts and comments
   * (also the user's comments on others' posts) go by ON DELETE CASCADE. First locks those comments
   * in id order (`SELECT … ORDER BY id FOR UPDATE`): two users deleted at once who commented on each
   * other's posts then queue instead of deadlocking. Must run inside a transaction, or the locks end
   * with the SELECT. `= ANY(ARRAY(…))` rather than `IN (…)`: the post ids become one value, so both
   * sides of the OR use their index (a BitmapOr); with IN, PostgreSQL filtered every comment.
   */
  async delete(id: number, conditions: Preconditions | undefined): Promise<void> {
    const users = inCurrentTransaction(this.txHost, this.users);
    await users.query(
      'SELECT 1 FROM comments WHERE author_id = $1 OR post_id = ANY(ARRAY(SELECT id FROM posts WHERE author_id = $1)) ORDER BY id FOR UPDATE',
      [id],
    );
    await deleteIfMatch(users, id, conditions);
  }

  /**
   * `INSERT INTO profiles … RETURNING` for a user that has none: the profile as stored, the
   * column defaults (bio '') included.
   */
  async insertProfile(userId: number, values: ProfileValues): Promise<Profile> {
    const { raw } = await inCurrentTransaction(this.txHost, this.profiles)
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

  /** A plain-SQL read (rows aliased to User's properties) where ReadRouter sends it. */
  private read(sql: string, parameters: unknown[]): Promise<User[]> {
    return this.reads.read((db) => db.query<User[]>(sql, parameters));
  }
}
