import { Injectable } from '@nestjs/common';
import { TransactionHost } from '@nestjs-cls/transactional';
import type { TransactionalAdapterTypeOrm } from '@nestjs-cls/transactional-adapter-typeorm';
import { InjectRepository } from '@nestjs/typeorm';
import type { EntityManager, Repository, SelectQueryBuilder } from 'typeorm';
import { ReadRouter } from '../db/read-routing';
import { inCurrentTransaction } from '../db/transactions';
import { deleteIfMatch, updateIfMatch } from '../db/versioned-writes';
import type { Preconditions } from '../http/conditional-requests';
import { Profile } from './entities/profile.entity';
import { User } from './entities/user.entity';

/** The columns a client may set on a user row. */
export type UserValues = Pick<User, 'name' | 'email'>;
/** The columns a client may set on a profile row. */
export type ProfileValues = Partial<Pick<Profile, 'bio' | 'avatarUrl'>>;

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
   * One user by id, or null. With `withProfile`, `profile` is loaded by a LEFT JOIN in the same
   * statement (undefined when the user has none: the service sets null).
   */
  findById(id: number, withProfile: boolean): Promise<User | null> {
    return this.reads.read((db) => this.select(db, withProfile).where('user.id = :id', { id }).getOne());
  }

  /**
   * At most `limit` users from `offset`, ordered by name then id (ties page stably; index
   * users_name_id_idx), in one statement. LIMIT/OFFSET rather than take/skip: the only join is
   * one-to-one, so rows are users and TypeORM's DISTINCT pre-query for paginated joins is not needed.
   */
  findPage(limit: number, offset: number, withProfile: boolean): Promise<User[]> {
    return this.reads.read((db) =>
      this.select(db, withProfile)
        .orderBy('user.name', 'ASC')
        .addOrderBy('user.id', 'ASC')
        .limit(limit)
        .offset(offset)
        .getMany(),
    );
  }

  /** `INSERT INTO users … RETURNING id`; a taken email fails on users_email_lower_key (409). */
  async insert(values: UserValues): Promise<number> {
    const { identifiers } = await inCurrentTransaction(this.txHost, this.users).insert(values);
    return identifiers[0].id as number;
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
   * with the SELECT.
   */
  async delete(id: number, conditions: Preconditions | undefined): Promise<void> {
    const users = inCurrentTransaction(this.txHost, this.users);
    await users.query(
      'SELECT 1 FROM comments WHERE author_id = $1 OR post_id IN (SELECT id FROM posts WHERE author_id = $1) ORDER BY id FOR UPDATE',
      [id],
    );
    await deleteIfMatch(users, id, conditions);
  }

  /** `INSERT INTO profiles` for a user that has none. */
  async insertProfile(userId: number, values: ProfileValues): Promise<void> {
    await inCurrentTransaction(this.txHost, this.profiles).insert({ userId, ...values });
  }

  /** `INSERT … ON CONFLICT (user_id) DO UPDATE`: creates or replaces the user's profile. */
  async upsertProfile(userId: number, values: ProfileValues): Promise<void> {
    await inCurrentTransaction(this.txHost, this.profiles).upsert({ userId, ...values }, { conflictPaths: ['userId'] });
  }

  /** `DELETE FROM profiles WHERE user_id = $1`; no profile is not an error. */
  async deleteProfile(userId: number): Promise<void> {
    await inCurrentTransaction(this.txHost, this.profiles).delete({ userId });
  }

  private select(db: EntityManager, withProfile: boolean): SelectQueryBuilder<User> {
    const query = db.getRepository(User).createQueryBuilder('user');
    return withProfile ? query.leftJoinAndSelect('user.profile', 'profile') : query;
  }
}
