import { Expose, plainToInstance, Type } from 'class-transformer';
import { CommentResponse } from '../../comments/dto/comment.response';
import type { Post } from '../entities/post.entity';

export class AuthorSummary {
  @Expose() id!: number;
  @Expose() name!: string;
}

export class PostResponse {
  @Expose() id!: number;
  @Expose() authorId!: number;
  @Expose() title!: string;
  @Expose() body!: string;
  @Expose() createdAt!: Date;
  @Expose() updatedAt!: Date;
  /** Present on /posts responses; a user's own posts leave it out. */
  @Expose() @Type(() => AuthorSummary) author?: AuthorSummary;
  @Expose() @Type(() => CommentResponse) comments?: CommentResponse[];

  static from(post: Post): PostResponse {
    return plainToInstance(PostResponse, post, { excludeExtraneousValues: true, exposeUnsetFields: false });
  }
}
