import { Inject, Injectable, NotFoundException } from '@nestjs/common';
import { TransactionHost } from '@nestjs-cls/transactional';
import type { TransactionalAdapterTypeOrm } from '@nestjs-cls/transactional-adapter-typeorm';
import { hasPreconditions, type Preconditions, requireUntaggedPreconditions } from '../http/conditional-requests';
import { CursorCodec, type CursorScope } from '../http/cursor';
import { type Page, toPage } from '../http/pagination';
import { inTransaction } from '../database/transactions/transactions';
import type { CommentValues } from './comments.repository';
import type { ListCommentsQuery } from './dto/list-comments.query';
import { CommentsRepository } from './comments.repository';
import type { Comment } from './entities/comment.entity';

/** One post's comments in (createdAt, id) order: a cursor of post A's list is a 400 on post B's (e2a#782). */
export function commentsList(postId: number): CursorScope {
  return { list: 'post-comments', keys: ['date', 'id'], params: { postId } };
}

@Injectable()
export class CommentsService {
  constructor(
    private readonly comments: CommentsRepository,
    private readonly txHost: TransactionHost<TransactionalAdapterTypeOrm>,
    @Inject(CursorCodec) private readonly cursors: CursorCodec,
  ) {}

  async findOne(id: number): Promise<Comment> {
    const comment = await this.comments.findById(id);
    if (!comment) throw new NotFoundException(`Comment ${id} not found`);
    return comment;
  }

  /**
   * The first page (`limit`, oldest first) of each given post's comments, keyed by post id, each with
   * the cursor of its next page when there is more (as listForPost would answer it): one query for
   * any number of posts (portable: one per 250), each post's read bounded by `limit` (the guide's
   * selectinload, docs/from-sqlalchemy.md). A post without comments has no entry.
   */
  async firstPagesOf(postIds: number[], limit: number): Promise<Map<number, Page<Comment>>> {
    const byPost = Map.groupBy(await this.comments.findFirstByPostIds(postIds, limit + 1), (comment) => comment.postId);
    return new Map(
      [...byPost].map(([postId, rows]) => [
        postId,
        toPage(rows, limit, (last) => this.cursors.encode(commentsList(postId), [last.createdAt, last.id])),
      ]),
    );
  }

  /**
   * Keyset pagination in (createdAt, id) order, after a cursor of this post's list (else 400): each page starts strictly after the previous page's
   * last row, so rows inserted meanwhile never shift pages (no duplicates, no gaps), unlike OFFSET.
   * Sound only because a post's comments become visible in that order: the database timestamps each
   * insert under a lock on its post (migration CommentsInKeysetOrder).
   */
  async listForPost(postId: number, { limit, cursor }: ListCommentsQuery): Promise<Page<Comment>> {
    const scope = commentsList(postId);
    const after = cursor === undefined ? undefined : (this.cursors.decode(scope, cursor) as [Date, number]);
    if (!(await this.comments.postExists(postId))) throw new NotFoundException(`Post ${postId} not found`);
    const rows = await this.comments.findPageAfter(postId, after, limit + 1);
    return toPage(rows, limit, (last) => this.cursors.encode(scope, [last.createdAt, last.id]));
  }

  /** Inserts comments on a post; joins the caller's transaction, or runs in its own. */
  createMany(postId: number, comments: CommentValues[]): Promise<Comment[]> {
    if (comments.length === 0) return Promise.resolve([]);
    return inTransaction(this.txHost, () => this.comments.insertMany(postId, comments));
  }

  /**
   * A missing post is 404, a missing author 422 (from the foreign key, race-free). The author is
   * already decided (AccessPolicy.assignCommentAuthors). `conditions`: the comment list has no ETag
   * (see requireUntaggedPreconditions); with any, the post must exist (404) and then they are
   * evaluated (412) before the insert, so a 412 comes before a missing author's 422 (RFC 9110 §13.2.1).
   */
  async create(postId: number, dto: CommentValues, conditions: Preconditions = {}): Promise<Comment> {
    if (hasPreconditions(conditions)) {
      if (!(await this.comments.postExists(postId))) throw new NotFoundException(`Post ${postId} not found`);
      requireUntaggedPreconditions(conditions);
    }
    const [comment] = await this.createMany(postId, [dto]);
    return comment;
  }

  /** `conditions`: a comment has no ETag (see requireUntaggedPreconditions); a missing one is 404. */
  async remove(id: number, conditions: Preconditions = {}): Promise<void> {
    await inTransaction(this.txHost, async () => {
      if (!(await this.comments.delete(id))) throw new NotFoundException(`Comment ${id} not found`);
      requireUntaggedPreconditions(conditions); // rolls the DELETE back
    });
  }
}
