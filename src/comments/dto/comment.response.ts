import { ApiProperty } from '@nestjs/swagger';

/** The public shape of a comment: an allowlist, like UserResponse. */
export class CommentResponse {
  @ApiProperty() id!: number;
  @ApiProperty() postId!: number;
  @ApiProperty() authorId!: number;
  @ApiProperty() body!: string;
  @ApiProperty() createdAt!: Date;
}
