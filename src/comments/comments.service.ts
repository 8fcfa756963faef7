import { Inject, Injectable, NotFoundException } from '@nestjs/common';
import { TransactionHost } from '@nestjs-cls/transactional';
import type { TransactionalAdapterTypeOrm } from '@nestjs-cls/transactional-adapter-typeorm';
import { type Preconditions, requireUntaggedPreconditions } from '../http/conditional-requests';
import { CursorCodec } from '../http/cursor';
import { inTransaction } from '../db/transactions';
import type { CreateCommentDto } from './dto/create-comment.dto';
import type { ListCommentsQuery } from './dto/list-comments.query';
import { CommentsRepository } from './comments.repository';
import type { Comment } from './entities/comment.entity';

export interface CommentPage {
  items: Comment[];
  /** Opaque cursor for the next page, when there is one. */
  nextCursor?: string;
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

  /** All comments of the given posts in one query (the guide's selectinload, docs/from-sqlalchemy.md), oldest first. */
  findByPostIds(postIds: number[]): Promise<Comment[]> {
    return this.comments.findByPostIds(postIds);
  }

  /**
   * Keyset pagination in (createdAt, id) order: each page starts strictly after the previous page's
   * last row, so rows inserted meanwhile never shift pages (no duplicates, no gaps), unlike OFFSET.
   * Sound only because a post's comments become visible in that order: the database timestamps each
   * insert under a lock on its post (migration CommentsInKeysetOrder).
   */
  async listForPost(postId: number, { limit, cursor }: ListCommentsQuery): Promise<CommentPage> {
    const after = cursor === undefined ? undefined : this.cursors.decode(cursor);
    if (!(await this.comments.postExists(postId))) throw new NotFoundException(`Post ${postId} not found`);
    const rows = await this.comments.findPageAfter(postId, after, limit + 1);
    const items = rows.slice(0, limit);
    const last = items.at(-1);
    return { items, nextCursor: rows.length > limit && last ? this.cursors.encode(last) : undefined };
  }

  /** Inserts comments on a post; joins the caller's transaction, or runs in its own. */
  createMany(postId: number, comments: CreateCommentDto[]): Promise<Comment[]> {
    if (comments.length === 0) return Promise.resolve([]);
    return inTransaction(this.txHost, () => this.comments.insertMany(postId, comments));
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
      if (!(await this.comments.delete(id))) throw new NotFoundException(`Comment ${id} not found`);
      requireUntaggedPreconditions(conditions); // rolls the DELETE back
    });
  }
}
