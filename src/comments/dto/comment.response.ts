import { Expose, plainToInstance } from 'class-transformer';
import type { Comment } from '../entities/comment.entity';

export class CommentResponse {
  @Expose() id!: number;
  @Expose() postId!: number;
  @Expose() authorId!: number;
  @Expose() body!: string;
  @Expose() createdAt!: Date;

  static from(comment: Comment): CommentResponse {
    return plainToInstance(CommentResponse, comment, { excludeExtraneousValues: true, exposeUnsetFields: false });
  }
}
