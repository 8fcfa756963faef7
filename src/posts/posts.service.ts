import { Injectable, NotFoundException } from '@nestjs/common';
import { TransactionHost } from '@nestjs-cls/transactional';
import type { TransactionalAdapterTypeOrm } from '@nestjs-cls/transactional-adapter-typeorm';
import { CommentsService } from '../comments/comments.service';
import { hasPreconditions, type Preconditions, requireUntaggedPreconditions } from '../http/conditional-requests';
import { CursorCodec, type CursorScope } from '../http/cursor';
import { type Page, pageStart, toPage } from '../http/pagination';
import { NESTED_LIMIT, type PaginationQuery } from '../http/pagination.query';
import { validationProblem } from '../http/problem';
import { inRequestArray } from '../database/errors/database-errors';
import { inTransaction } from '../database/transactions/transactions';
import type { CommentValues } from '../comments/comments.repository';
import type { CreatePostDto } from './dto/create-post.dto';
import { type ListPostsQuery, Q_SCAN_ROWS } from './dto/list-posts.query';
import type { UpdatePostDto } from './dto/update-post.dto';
import type { Post } from './entities/post.entity';
import { type PostFilter, PostsRepository } from './posts.repository';

/** Why `offset` with `q` is a 400 (ADR 0017): an offset counts matches, which a bounded read cannot skip. */
export const OFFSET_WITH_Q =
  'offset cannot be used with q: page with cursor, from the Link header\'s rel="next" (a search page reads boundedly and cannot skip matches)';

@Injectable()
export class PostsService {
  constructor(
    private readonly posts: PostsRepository,
    private readonly txHost: TransactionHost<TransactionalAdapterTypeOrm>,
    private readonly comments: CommentsService,
    private readonly cursors: CursorCodec,
  ) {}

  /** Two queries: the post with its author (JOIN), then its first NESTED_LIMIT comments. */
  async findOne(id: number): Promise<Post> {
    const post = await this.posts.findById(id);
    if (!post) throw new NotFoundException(`Post ${id} not found`);
    await this.attachComments([post]);
    return post;
  }

  /**
   * A page of posts with author and first comments (attachComments), from an offset or after a cursor of this very list
   * (the same `sort`, `authorId` and `q`; else 400): two queries whatever the page size or position
   * (a `q` page up to four: findSearchPage). `offset` > 0 with `q` is a 400 naming `offset` (OFFSET_WITH_Q).
   */
  async findAll(query: ListPostsQuery): Promise<Page<Post>> {
    return this.page(postsList('posts', query), query);
  }

  /** A user's posts, newest first (its cursors are its own); 404 when the user does not exist. */
  async listByAuthor(authorId: number, pagination: PaginationQuery): Promise<Page<Post>> {
    const query = { ...pagination, authorId, sort: '-createdAt' as const };
    const page = await this.page(postsList('user-posts', query), query);
    if (page.items.length === 0 && !(await this.posts.authorExists(authorId))) {
      throw new NotFoundException(`User ${authorId} not found`);
    }
    return page;
  }

  private async page(scope: CursorScope, query: PaginationQuery & PostFilter): Promise<Page<Post>> {
    const { limit, authorId, q, sort } = query;
    const start = pageStart(query, (cursor) => this.cursors.decode(scope, cursor));
    const cursorOf = (last: Post) =>
      this.cursors.encode(scope, [sort.endsWith('title') ? last.title : last.createdAt, last.id]);
    let page: Page<Post>;
    if (q && 'offset' in start && start.offset > 0) {
      // An offset counts matches: skipping them takes reading them all where no index serves q (ADR 0017).
      throw validationProblem([{ field: 'offset', messages: [OFFSET_WITH_Q] }]);
    }
    if (q) {
      // A search reads boundedly (ADR 0017): its page may end early, with a cursor to go on.
      const after = 'after' in start ? start.after : undefined;
      const { rows, resumeAfter } = await this.posts.findSearchPage(
        { authorId, q, sort },
        limit + 1,
        after,
        Q_SCAN_ROWS,
      );
      page = toPage(rows, limit, cursorOf);
      if (!page.nextCursor && resumeAfter) page.nextCursor = this.cursors.encode(scope, resumeAfter);
    } else {
      page = toPage(await this.posts.findPage({ authorId, q, sort }, limit + 1, start), limit, cursorOf);
    }
    await this.attachComments(page.items);
    return page;
  }

  /**
   * The newest NESTED_LIMIT posts of each given author in one query (each author's read bounded), and —
   * when asked — their first comments in one more: two queries for any number of authors (the guide's
   * nested selectinload, docs/from-sqlalchemy.md). Keyed by author id, each a Page whose `nextCursor`,
   * when set, is that author's GET /users/{id}/posts cursor after the last post (see postsNextPath);
   * an author without posts has no entry.
   */
  async firstPagesByAuthors(authorIds: number[], options: { withComments: boolean }): Promise<Map<number, Page<Post>>> {
    const rows = await this.posts.findFirstByAuthorIds(authorIds, NESTED_LIMIT + 1);
    const pages = new Map(
      [...Map.groupBy(rows, (post) => post.authorId)].map(([authorId, posts]) => [
        authorId,
        toPage(posts, NESTED_LIMIT, (last) => this.cursors.encode(userPostsList(authorId), [last.createdAt, last.id])),
      ]),
    );
    if (options.withComments) await this.attachComments([...pages.values()].flatMap((page) => page.items));
    return pages;
  }

  /**
   * Explicit loading of `post.comments` for a whole batch (the guide's `awaitable_attrs`,
   * docs/from-sqlalchemy.md): each post's first NESTED_LIMIT comments, oldest first, in one query
   * (each post's read bounded); `post.commentsNext` is the path of the next page of GET
   * /posts/{id}/comments when the post has more.
   */
  async attachComments(posts: Post[]): Promise<void> {
    const pages = await this.comments.firstPagesOf(
      posts.map((post) => post.id),
      NESTED_LIMIT,
    );
    for (const post of posts) {
      const page = pages.get(post.id);
      post.comments = page?.items ?? [];
      if (page?.nextCursor) post.commentsNext = nextPagePath(`/posts/${post.id}/comments`, page.nextCursor);
    }
  }

  /**
   * The post and its initial comments commit together: one bad comment and nothing is stored.
   * `conditions`: the user's post list has no ETag (see requireUntaggedPreconditions); with any, the
   * user must exist (404) and then they are evaluated (412) before the insert, so a 412 comes before
   * the 422 of a comment naming a missing author (RFC 9110 §13.2.1).
   */
  async create(
    authorId: number,
    dto: CreatePostDto & { comments?: CommentValues[] },
    conditions: Preconditions = {},
  ): Promise<Post> {
    if (hasPreconditions(conditions)) {
      if (!(await this.posts.authorExists(authorId))) throw new NotFoundException(`User ${authorId} not found`);
      requireUntaggedPreconditions(conditions);
    }
    const id = await inTransaction(this.txHost, async () => {
      const [created] = await this.createMany(authorId, [dto]);
      const comments = dto.comments ?? [];
      await this.comments.createMany(created.id, comments).catch((error: unknown) => {
        throw inRequestArray(error, 'comments', comments); // 422 naming `comments.2.authorId`
      }); // joins this transaction
      return created.id;
    });
    return this.findOne(id);
  }

  /** Inserts posts for an author; joins the caller's transaction, or runs in its own. */
  createMany(authorId: number, posts: CreatePostDto[]): Promise<Post[]> {
    if (posts.length === 0) return Promise.resolve([]);
    return inTransaction(this.txHost, () => this.posts.insertMany(authorId, posts));
  }

  /** `conditions`: the client's If-Match / If-None-Match, evaluated by the UPDATE (see updateIfMatch). */
  async update(id: number, { title, body }: UpdatePostDto, conditions?: Preconditions): Promise<Post> {
    await inTransaction(this.txHost, () => this.posts.update(id, { title, body }, conditions));
    return this.findOne(id);
  }

  /** Its comments go with it (ON DELETE CASCADE), in the one transaction the repository's lock ordering needs. */
  async remove(id: number, conditions?: Preconditions): Promise<void> {
    await inTransaction(this.txHost, () => this.posts.delete(id, conditions));
  }
}

/** GET /users/{id}/posts' cursor scope (newest first), as listByAuthor issues it. */
export function userPostsList(authorId: number): CursorScope {
  return postsList('user-posts', { authorId, sort: '-createdAt' });
}

/**
 * The path of a nested collection's next page (`commentsNext`, `postsNext`): its list endpoint
 * with NESTED_LIMIT as `limit` and the cursor after the last embedded row.
 */
export function nextPagePath(listPath: string, cursor: string): string {
  return `${listPath}?${new URLSearchParams({ limit: String(NESTED_LIMIT), cursor }).toString()}`;
}

/**
 * A post list's cursor scope: `list` (GET /posts, or one user's posts) with everything that decides
 * its rows and order — sort, author, title filter — so a cursor is only valid on the list that issued it.
 */
export function postsList(list: 'posts' | 'user-posts', { sort, authorId, q }: PostFilter): CursorScope {
  return {
    list,
    keys: [sort.endsWith('title') ? 'text' : 'date', 'id'],
    params: { sort, authorId, q: q || undefined },
  };
}
