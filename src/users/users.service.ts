import { ConflictException, Injectable, NotFoundException } from '@nestjs/common';
import { TransactionHost } from '@nestjs-cls/transactional';
import type { TransactionalAdapterTypeOrm } from '@nestjs-cls/transactional-adapter-typeorm';
import { AccountsService } from '../auth/accounts.service';
import type { Caller } from '../auth/caller';
import { type Preconditions, requireUntaggedPreconditions } from '../http/conditional-requests';
import { CursorCodec, type CursorScope } from '../http/cursor';
import { type Page, pageStart, toPage } from '../http/pagination';
import type { PaginationQuery } from '../http/pagination.query';
import { inTransaction } from '../database/transactions/transactions';
import { nextPagePath, PostsService } from '../posts/posts.service';
import type { CreateUserDto } from './dto/create-user.dto';
import type { UpdateUserDto } from './dto/update-user.dto';
import type { UserInclude } from './dto/user-include.query';
import type { User } from './entities/user.entity';
import { UsersRepository } from './users.repository';

const EVERYTHING: UserInclude = { profile: true, posts: true, comments: true };
/** GET /users: ordered by (name, id); `include` changes the shape, not the rows, so it is not part of it. */
export const USERS_LIST: CursorScope = { list: 'users', keys: ['text', 'id'] };

@Injectable()
export class UsersService {
  constructor(
    private readonly users: UsersRepository,
    private readonly txHost: TransactionHost<TransactionalAdapterTypeOrm>,
    private readonly posts: PostsService,
    private readonly accounts: AccountsService,
    private readonly cursors: CursorCodec,
  ) {}

  /**
   * At most 3 queries: the user with its profile (JOIN), its newest posts, their first comments (each
   * collection bounded by NESTED_LIMIT, with a link to the rest: attachPosts).
   */
  async findOne(id: number, include: UserInclude = EVERYTHING): Promise<User> {
    const user = await this.users.findById(id, include.profile);
    if (!user) throw new NotFoundException(`User ${id} not found`);
    await this.attachPosts([user], include);
    return user;
  }

  /**
   * Ordered by name, then id (so ties page stably), from an offset or after a cursor (400 when it is
   * not one of this list's); the same 3 queries whatever the page size or position.
   */
  async findAll(query: PaginationQuery, include: UserInclude = EVERYTHING): Promise<Page<User>> {
    const start = pageStart(query, (cursor) => this.cursors.decode(USERS_LIST, cursor));
    const rows = await this.users.findPage(query.limit + 1, start, include.profile);
    const page = toPage(rows, query.limit, (last) => this.cursors.encode(USERS_LIST, [last.name, last.id]));
    await this.attachPosts(page.items, include);
    return page;
  }

  /**
   * One transaction: the user, its profile and any initial posts are stored together or not at all.
   * The result is what the transaction's own INSERT … RETURNING statements gave back — the rows as
   * stored, defaults and timestamps included — in the shape findOne() reads (posts newest first,
   * no comments yet), and it is returned only once COMMIT has succeeded: no read-back needed. The
   * password is hashed before the transaction opens; the verification mail is queued in it (mail
   * outbox), never sent while it is open. `conditions`: the collection has no ETag (see
   * requireUntaggedPreconditions); it always exists, so they are evaluated first: a tag list in
   * If-Match is 412 even for a taken email (RFC 9110 §13.2.1, docs/api.md).
   */
  async create(dto: CreateUserDto, conditions: Preconditions = {}): Promise<User> {
    requireUntaggedPreconditions(conditions);
    const passwordHash = await this.accounts.hashNewPassword(dto.password);
    return inTransaction(this.txHost, async () => {
      const user = await this.users.insert({ name: dto.name, email: dto.email, passwordHash });
      user.profile = dto.profile ? await this.users.insertProfile(user.id, dto.profile) : null;
      const posts = await this.posts.createMany(user.id, dto.posts ?? []); // joins this transaction
      await this.accounts.created(user.id, user.email); // the token and its mail commit with the user
      user.posts = posts
        .map((post) => Object.assign(post, { comments: [] }))
        .sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime() || b.id - a.id);
      return user;
    });
  }

  /**
   * `conditions`: the client's If-Match / If-None-Match, evaluated by the UPDATE (see updateIfMatch).
   * The identity fields (email, password, role) go through AccountsService: checked first (who may
   * change what, `currentPassword` — 400/403/429), then applied around this feature's one UPDATE in
   * the same transaction (sessions ended, verification mails queued, the last admin kept).
   * `caller`: who asks (AccessPolicy has let them act as `id`); `client`: their IP. Preconditions
   * come before what the change itself is refused for (RFC 9110 §13.2.1): a stale If-Match is 412
   * whether the email is taken (the UPDATE matches no row) or the last admin would lose the role.
   */
  async update(
    id: number,
    dto: UpdateUserDto,
    conditions: Preconditions | undefined,
    caller: Caller,
    client: string,
  ): Promise<User> {
    const { name, profile, ...identity } = dto;
    const change = await this.accounts.prepareChange(caller, id, identity, client);
    await inTransaction(this.txHost, async () => {
      // Always touch the user row, even for a profile-only change: it bumps the version (so the ETag
      // changes) and locks the user for the rest of the transaction.
      await this.preconditionsFirst(id, conditions, () =>
        this.accounts.applyChange(id, change, (columns) => this.users.update(id, { name, ...columns }, conditions)),
      );
      if (profile === null) await this.users.deleteProfile(id);
      else if (profile) await this.users.upsertProfile(id, profile);
    });
    return this.findOne(id);
  }

  /**
   * Posts, comments (including comments the user wrote elsewhere) and sessions go by ON DELETE
   * CASCADE. The last admin cannot be deleted (409), unless a precondition fails first (412).
   */
  async remove(id: number, conditions?: Preconditions): Promise<void> {
    // A transaction of its own: the repository's lock ordering and the admins' lock only hold while it is open.
    await inTransaction(this.txHost, async () => {
      await this.preconditionsFirst(id, conditions, () => this.accounts.assertMayRemove(id));
      await this.users.delete(id, conditions);
    });
  }

  /**
   * Runs `write`; when one of its rules refuses it (409: the last admin) before the version-checked
   * statement could, the request's preconditions are evaluated first and a failing one is the answer
   * (404/412, RFC 9110 §13.2.1). A 409 from the statement itself (a taken email) only happens when the
   * preconditions held: the statement checks them. Inside the caller's transaction, which the
   * refusal has not aborted (it is the application's, not the database's).
   */
  private async preconditionsFirst(id: number, conditions: Preconditions | undefined, write: () => Promise<void>) {
    try {
      await write();
    } catch (error) {
      if (error instanceof ConflictException) await this.users.requirePreconditions(id, conditions);
      throw error;
    }
  }

  /**
   * Explicit batch loading of `user.posts` (and their comments): never one query per user. Each user's
   * newest NESTED_LIMIT posts; `user.postsNext`, the path of the next page of GET /users/{id}/posts
   * when the user has more.
   */
  private async attachPosts(users: User[], include: UserInclude): Promise<void> {
    if (include.profile) for (const user of users) user.profile ??= null;
    if (!include.posts) return;
    const pages = await this.posts.firstPagesByAuthors(
      users.map((user) => user.id),
      { withComments: include.comments },
    );
    for (const user of users) {
      const page = pages.get(user.id);
      user.posts = page?.items ?? [];
      if (page?.nextCursor) user.postsNext = nextPagePath(`/users/${user.id}/posts`, page.nextCursor);
    }
  }
}
