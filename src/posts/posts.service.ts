import { Injectable } from '@nestjs/common';
import { TransactionHost } from '@nestjs-cls/transactional';
import type { TransactionalAdapterTypeOrm } from '@nestjs-cls/transactional-adapter-typeorm';
import { InjectRepository } from '@nestjs/typeorm';
import { In, Repository } from 'typeorm';
import { CommentsService } from '../comments/comments.service';
import { groupBy } from '../common/group-by';
import { CreatePostDto } from './dto/create-post.dto';
import { Post } from './entities/post.entity';

@Injectable()
export class PostsService {
  constructor(
    @InjectRepository(Post) private readonly posts: Repository<Post>,
    private readonly txHost: TransactionHost<TransactionalAdapterTypeOrm>,
    private readonly comments: CommentsService,
  ) {}

  /**
   * Posts of the given authors in one `IN` query, newest first, and — when asked — their comments in
   * one more: two queries for any number of authors (the guide's nested selectinload).
   */
  async findByAuthorIds(authorIds: number[], options: { withComments: boolean }): Promise<Post[]> {
    if (authorIds.length === 0) return [];
    const posts = await this.posts.find({
      where: { authorId: In(authorIds) },
      order: { authorId: 'ASC', createdAt: 'DESC', id: 'DESC' },
    });
    if (options.withComments) await this.attachComments(posts);
    return posts;
  }

  /** Explicit loading of `post.comments` for a whole batch (the guide's `awaitable_attrs`). */
  async attachComments(posts: Post[]): Promise<void> {
    const byPost = groupBy(
      await this.comments.findByPostIds(posts.map((post) => post.id)),
      (comment) => comment.postId,
    );
    for (const post of posts) post.comments = byPost.get(post.id) ?? [];
  }

  /** Inserts posts for an author; joins the caller's transaction, or runs in its own. */
  createMany(authorId: number, posts: CreatePostDto[]): Promise<Post[]> {
    if (posts.length === 0) return Promise.resolve([]);
    return this.txHost.withTransaction(async () => {
      const repository = this.txHost.tx.getRepository(Post);
      return repository.save(posts.map((post) => repository.create({ ...post, authorId })));
    });
  }
}
