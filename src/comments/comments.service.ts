import { Inject, Injectable, NotFoundException } from '@nestjs/common';
import { TransactionHost } from '@nestjs-cls/transactional';
import type { TransactionalAdapterTypeOrm } from '@nestjs-cls/transactional-adapter-typeorm';
import { InjectRepository } from '@nestjs/typeorm';
import { Repository } from 'typeorm';
import { type Preconditions, requireUntaggedPreconditions } from '../http/conditional-requests';
import { CursorCodec } from '../http/cursor';
import { inTransaction } from '../db/transactions';
import { Post } from '../posts/entities/post.entity';
import type { CreateCommentDto } from './dto/create-comment.dto';
import type { ListCommentsQuery } from './dto/list-comments.query';
import { Comment } from './entities/comment.entity';

/**
 * The batch loader behind every nested read (a page of 20 users carries up to 1,000 comments). Plain
 * SQL because building the statement and hydrating entities was a fifth of such a request's CPU
 * (BENCHMARKS.md); each column is aliased to its `Comment` property, so the rows come back as Comments
 * with no mapping (a test checks they equal what the repository loads). `= ANY($1)` binds the ids as
 * one array: one statement shape for any batch size, where `In()` would expand to `IN ($1, …, $n)`.
 */
const COMMENTS_OF_POSTS =
  'SELECT id, post_id AS "postId", author_id AS "authorId", body, created_at AS "createdAt" ' +
  'FROM comments WHERE post_id = ANY($1) ORDER BY post_id, created_at, id';

export interface CommentPage {
  items: Comment[];
  /** Opaque cursor for the next page, when there is one. */
  nextCursor?: string;
}

@Injectable()
export class CommentsService {
  constructor(
    @InjectRepository(Comment) private readonly comments: Repository<Comment>,
    @InjectRepository(Post) private readonly posts: Repository<Post>,
    private readonly txHost: TransactionHost<TransactionalAdapterTypeOrm>,
    @Inject(CursorCodec) private readonly cursors: CursorCodec,
  ) {}

  async findOne(id: number): Promise<Comment> {
    const comment = await this.comments.findOneBy({ id });
    if (!comment) throw new NotFoundException(`Comment ${id} not found`);
    return comment;
  }

  /**
   * All comments of the given posts in one query (the guide's selectinload), oldest first. Plain SQL
   * rather than the query builder: see COMMENTS_OF_POSTS.
   */
  findByPostIds(postIds: number[]): Promise<Comment[]> {
    if (postIds.length === 0) return Promise.resolve([]);
    return this.comments.query<Comment[]>(COMMENTS_OF_POSTS, [postIds]);
  }

  /**
   * Keyset pagination in (createdAt, id) order: each page starts strictly after the previous page's
   * last row, so rows inserted meanwhile never shift pages (no duplicates, no gaps), unlike OFFSET.
   * Sound only because a post's comments become visible in that order: the database timestamps each
   * insert under a lock on its post (migration CommentsInKeysetOrder).
   */
  async listForPost(postId: number, { limit, cursor }: ListCommentsQuery): Promise<CommentPage> {
    const after = cursor === undefined ? undefined : this.cursors.decode(cursor);
    if (!(await this.posts.existsBy({ id: postId }))) throw new NotFoundException(`Post ${postId} not found`);

    const query = this.comments
      .createQueryBuilder('comment')
      .where('comment.post_id = :postId', { postId })
      .orderBy('comment.created_at', 'ASC')
      .addOrderBy('comment.id', 'ASC')
      .limit(limit + 1);
    if (after) query.andWhere('(comment.created_at, comment.id) > (:createdAt, :id)', after);

    const rows = await query.getMany();
    const items = rows.slice(0, limit);
    const last = items.at(-1);
    return { items, nextCursor: rows.length > limit && last ? this.cursors.encode(last) : undefined };
  }

  /** Inserts comments on a post; joins the caller's transaction, or runs in its own. */
  createMany(postId: number, comments: CreateCommentDto[]): Promise<Comment[]> {
    if (comments.length === 0) return Promise.resolve([]);
    return inTransaction(this.txHost, () => {
      const repository = this.txHost.tx.getRepository(Comment);
      return repository.save(comments.map((comment) => repository.create({ ...comment, postId })));
    });
  }

  /** A missing post is 404, a missing author 422 (from the foreign key, race-free). */
  create(postId: number, dto: CreateCommentDto, conditions: Preconditions = {}): Promise<Comment> {
    return inTransaction(this.txHost, async () => {
      const [comment] = await this.createMany(postId, [dto]);
      requireUntaggedPreconditions(conditions);
      return comment;
    });
  }

  /** `conditions`: a comment has no ETag (see requireUntaggedPreconditions); a missing one is 404. */
  async remove(id: number, conditions: Preconditions = {}): Promise<void> {
    await inTransaction(this.txHost, async () => {
      const { affected } = await this.txHost.tx.delete(Comment, { id });
      if (!affected) throw new NotFoundException(`Comment ${id} not found`);
      requireUntaggedPreconditions(conditions); // rolls the DELETE back
    });
  }
}
