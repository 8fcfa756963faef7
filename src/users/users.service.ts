import { Injectable, NotFoundException } from '@nestjs/common';
import { TransactionHost } from '@nestjs-cls/transactional';
import type { TransactionalAdapterTypeOrm } from '@nestjs-cls/transactional-adapter-typeorm';
import { InjectRepository } from '@nestjs/typeorm';
import { Repository, type SelectQueryBuilder } from 'typeorm';
import { deleteIfMatch, updateIfMatch } from '../db/versioned-writes';
import { type Preconditions, requireUntaggedPreconditions } from '../http/conditional-requests';
import { type Page, toPage } from '../http/pagination';
import type { PaginationQuery } from '../http/pagination.query';
import { inTransaction } from '../db/transactions';
import { PostsService } from '../posts/posts.service';
import type { CreateUserDto } from './dto/create-user.dto';
import type { UpdateUserDto } from './dto/update-user.dto';
import type { UserInclude } from './dto/user-include.query';
import { Profile } from './entities/profile.entity';
import { User } from './entities/user.entity';

const EVERYTHING: UserInclude = { profile: true, posts: true, comments: true };

@Injectable()
export class UsersService {
  constructor(
    @InjectRepository(User) private readonly users: Repository<User>,
    private readonly txHost: TransactionHost<TransactionalAdapterTypeOrm>,
    private readonly posts: PostsService,
  ) {}

  /** At most 3 queries: the user with its profile (JOIN), its posts (IN), their comments (IN). */
  async findOne(id: number, include: UserInclude = EVERYTHING): Promise<User> {
    const user = await this.selectUsers(include).where('user.id = :id', { id }).getOne();
    if (!user) throw new NotFoundException(`User ${id} not found`);
    await this.attachPosts([user], include);
    return user;
  }

  /** Ordered by name, then id (so ties page stably); the same 3 queries whatever the page size. */
  async findAll({ limit, offset }: PaginationQuery, include: UserInclude = EVERYTHING): Promise<Page<User>> {
    // limit/offset rather than take/skip: the only join is one-to-one, so rows are users and TypeORM's
    // DISTINCT pre-query for paginated joins is not needed.
    const rows = await this.selectUsers(include)
      .orderBy('user.name', 'ASC')
      .addOrderBy('user.id', 'ASC')
      .limit(limit + 1)
      .offset(offset)
      .getMany();
    const page = toPage(rows, limit);
    await this.attachPosts(page.items, include);
    return page;
  }

  /**
   * One transaction: the user, its profile and any initial posts are stored together or not at all.
   * `conditions`: the collection has no ETag (see requireUntaggedPreconditions).
   */
  async create(dto: CreateUserDto, conditions: Preconditions = {}): Promise<User> {
    const id = await inTransaction(this.txHost, async () => {
      const { identifiers } = await this.txHost.tx.insert(User, {
        name: dto.name,
        email: dto.email,
      });
      const userId = identifiers[0].id as number;
      if (dto.profile) await this.txHost.tx.insert(Profile, { userId, ...dto.profile });
      await this.posts.createMany(userId, dto.posts ?? []); // joins this transaction
      requireUntaggedPreconditions(conditions);
      return userId;
    });
    // Read back after COMMIT, so the response shows exactly what was stored.
    return this.findOne(id);
  }

  /** `conditions`: the client's If-Match / If-None-Match, evaluated by the UPDATE (see updateIfMatch). */
  async update(id: number, dto: UpdateUserDto, conditions?: Preconditions): Promise<User> {
    await inTransaction(this.txHost, async () => {
      const { name, email, profile } = dto;
      // Always touch the user row, even for a profile-only change: it bumps the version (so the ETag
      // changes) and locks the user for the rest of the transaction.
      await updateIfMatch(this.txHost.tx, User, id, { name, email }, conditions);
      if (profile === null) await this.txHost.tx.delete(Profile, { userId: id });
      else if (profile) await this.txHost.tx.upsert(Profile, { userId: id, ...profile }, { conflictPaths: ['userId'] });
    });
    return this.findOne(id);
  }

  /** Posts and comments (including comments the user wrote elsewhere) go by ON DELETE CASCADE. */
  async remove(id: number, conditions?: Preconditions): Promise<void> {
    await inTransaction(this.txHost, async () => {
      // Lock the comments the cascade will delete in id order first: two users deleted at once who
      // commented on each other's posts then queue instead of deadlocking.
      await this.txHost.tx.query(
        'SELECT 1 FROM comments WHERE author_id = $1 OR post_id IN (SELECT id FROM posts WHERE author_id = $1) ORDER BY id FOR UPDATE',
        [id],
      );
      await deleteIfMatch(this.txHost.tx, User, id, conditions);
    });
  }

  private selectUsers(include: UserInclude): SelectQueryBuilder<User> {
    const query = this.users.createQueryBuilder('user');
    return include.profile ? query.leftJoinAndSelect('user.profile', 'profile') : query;
  }

  /** Explicit batch loading of `user.posts` (and their comments): never one query per user. */
  private async attachPosts(users: User[], include: UserInclude): Promise<void> {
    if (include.profile) for (const user of users) user.profile ??= null;
    if (!include.posts) return;
    const posts = await this.posts.findByAuthorIds(
      users.map((user) => user.id),
      { withComments: include.comments },
    );
    const byAuthor = Map.groupBy(posts, (post) => post.authorId);
    for (const user of users) user.posts = byAuthor.get(user.id) ?? [];
  }
}
