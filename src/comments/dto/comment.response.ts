import { Expose } from 'class-transformer';

export class CommentResponse {
  @Expose() id!: number;
  @Expose() postId!: number;
  @Expose() authorId!: number;
  @Expose() body!: string;
  @Expose() createdAt!: Date;
}
