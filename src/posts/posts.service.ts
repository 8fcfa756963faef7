import { Injectable, NotFoundException } from '@nestjs/common';
import { TransactionHost } from '@nestjs-cls/transactional';
import type { TransactionalAdapterTypeOrm } from '@nestjs-cls/transactional-adapter-typeorm';
import { InjectRepository } from '@nestjs/typeorm';
import { Repository, type SelectQueryBuilder } from 'typeorm';
import { CommentsService } from '../comments/comments.service';
import { deleteIfMatch, updateIfMatch } from '../db/versioned-writes';
import { type Preconditions, requireUntaggedPreconditions } from '../http/conditional-requests';
import { type Page, toPage } from '../http/pagination';
import type { PaginationQuery } from '../http/pagination.query';
import { inTransaction } from '../db/transactions';
import { User } from '../users/entities/user.entity';
import type { CreatePostDto, CreatePostWithCommentsDto } from './dto/create-post.dto';
import type { ListPostsQuery, PostSort } from './dto/list-posts.query';
import type { UpdatePostDto } from './dto/update-post.dto';
import { Post } from './entities/post.entity';

const ORDER_BY: Record<PostSort, [column: string, direction: 'ASC' | 'DESC']> = {
  createdAt: ['post.created_at', 'ASC'],
  '-createdAt': ['post.created_at', 'DESC'],
  title: ['post.title', 'ASC'],
  '-title': ['post.title', 'DESC'],
};

/**
 * The batch loader behind every nested user read. Plain SQL for speed (see COMMENTS_OF_POSTS in
 * CommentsService); the aliases make each row a Post as the repository would load it.
 */
const POSTS_OF_AUTHORS =
  'SELECT id, author_id AS "authorId", title, body, created_at AS "createdAt", updated_at AS "updatedAt", version ' +
  'FROM posts WHERE author_id = ANY($1) ORDER BY author_id, created_at DESC, id DESC';

@Injectable()
export class PostsService {
  constructor(
    @InjectRepository(Post) private readonly posts: Repository<Post>,
    @InjectRepository(User) private readonly users: Repository<User>,
    private readonly txHost: TransactionHost<TransactionalAdapterTypeOrm>,
    private readonly comments: CommentsService,
  ) {}

  /** Two queries: the post with its author (JOIN), then its comments. */
  async findOne(id: number): Promise<Post> {
    const post = await this.selectPosts().where('post.id = :id', { id }).getOne();
    if (!post) throw new NotFoundException(`Post ${id} not found`);
    await this.attachComments([post]);
    return post;
  }

  /**
   * A page of posts with author and comments: two queries whatever the page size. The only join is
   * many-to-one, so LIMIT counts posts, never joined rows.
   */
  async findAll({ authorId, q, sort, limit, offset }: ListPostsQuery): Promise<Page<Post>> {
    const [column, direction] = ORDER_BY[sort];
    const query = this.selectPosts()
      .orderBy(column, direction)
      .addOrderBy('post.id', direction)
      .limit(limit + 1)
      .offset(offset);
    if (authorId !== undefined) query.andWhere('post.author_id = :authorId', { authorId });
    if (q) query.andWhere(`post.title ILIKE :pattern ESCAPE '\\'`, { pattern: `%${escapeLike(q)}%` });
    const page = toPage(await query.getMany(), limit);
    await this.attachComments(page.items);
    return page;
  }

  /** A user's posts, newest first; 404 when the user does not exist. */
  async listByAuthor(authorId: number, pagination: PaginationQuery): Promise<Page<Post>> {
    const page = await this.findAll({ ...pagination, authorId, sort: '-createdAt' });
    if (page.items.length === 0 && !(await this.users.existsBy({ id: authorId }))) {
      throw new NotFoundException(`User ${authorId} not found`);
    }
    return page;
  }

  /**
   * Posts of the given authors in one query, newest first, and — when asked — their comments in one
   * more: two queries for any number of authors (the guide's nested selectinload). Plain SQL rather
   * than the query builder, as in CommentsService.findByPostIds: see POSTS_OF_AUTHORS.
   */
  async findByAuthorIds(authorIds: number[], options: { withComments: boolean }): Promise<Post[]> {
    if (authorIds.length === 0) return [];
    const posts = await this.posts.query<Post[]>(POSTS_OF_AUTHORS, [authorIds]);
    if (options.withComments) await this.attachComments(posts);
    return posts;
  }

  /** Explicit loading of `post.comments` for a whole batch (the guide's `awaitable_attrs`). */
  async attachComments(posts: Post[]): Promise<void> {
    const byPost = Map.groupBy(
      await this.comments.findByPostIds(posts.map((post) => post.id)),
      (comment) => comment.postId,
    );
    for (const post of posts) post.comments = byPost.get(post.id) ?? [];
  }

  /** The post and its initial comments commit together: one bad comment and nothing is stored. */
  async create(authorId: number, dto: CreatePostWithCommentsDto, conditions: Preconditions = {}): Promise<Post> {
    const id = await inTransaction(this.txHost, async () => {
      const [created] = await this.createMany(authorId, [dto]);
      await this.comments.createMany(created.id, dto.comments ?? []); // joins this transaction
      requireUntaggedPreconditions(conditions); // the author exists: the insert passed its foreign key
      return created.id;
    });
    return this.findOne(id);
  }

  /** Inserts posts for an author; joins the caller's transaction, or runs in its own. */
  createMany(authorId: number, posts: CreatePostDto[]): Promise<Post[]> {
    if (posts.length === 0) return Promise.resolve([]);
    return inTransaction(this.txHost, () => {
      const repository = this.txHost.tx.getRepository(Post);
      return repository.save(posts.map(({ title, body }) => repository.create({ title, body, authorId })));
    });
  }

  /** `conditions`: the client's If-Match / If-None-Match, evaluated by the UPDATE (see updateIfMatch). */
  async update(id: number, { title, body }: UpdatePostDto, conditions?: Preconditions): Promise<Post> {
    await inTransaction(this.txHost, () => updateIfMatch(this.txHost.tx, Post, id, { title, body }, conditions));
    return this.findOne(id);
  }

  /** Its comments go with it (ON DELETE CASCADE), locked in id order first as UsersService.remove does. */
  async remove(id: number, conditions?: Preconditions): Promise<void> {
    await inTransaction(this.txHost, async () => {
      await this.txHost.tx.query('SELECT 1 FROM comments WHERE post_id = $1 ORDER BY id FOR UPDATE', [id]);
      await deleteIfMatch(this.txHost.tx, Post, id, conditions);
    });
  }

  private selectPosts(): SelectQueryBuilder<Post> {
    return this.posts
      .createQueryBuilder('post')
      .leftJoin('post.author', 'author')
      .addSelect(['author.id', 'author.name']);
  }
}

/** `q` is a plain substring: LIKE's wildcards in it match themselves. */
function escapeLike(text: string): string {
  return text.replace(/[\\%_]/g, (char) => `\\${char}`);
}
