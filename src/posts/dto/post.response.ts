import { Expose, Type } from 'class-transformer';
import { CommentResponse } from '../../comments/dto/comment.response';

export class PostResponse {
  @Expose() id!: number;
  @Expose() authorId!: number;
  @Expose() title!: string;
  @Expose() body!: string;
  @Expose() createdAt!: Date;
  @Expose() updatedAt!: Date;
  @Expose() @Type(() => CommentResponse) comments?: CommentResponse[];
}
