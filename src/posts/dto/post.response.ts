import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { CommentResponse } from '../../comments/dto/comment.response';

export class AuthorSummary {
  @ApiProperty() id!: number;
  @ApiProperty() name!: string;
}

/** The public shape of a post: an allowlist, like UserResponse. */
export class PostResponse {
  @ApiProperty() id!: number;
  @ApiProperty() authorId!: number;
  @ApiProperty() title!: string;
  @ApiProperty() body!: string;
  @ApiProperty() createdAt!: Date;
  @ApiProperty() updatedAt!: Date;

  @ApiPropertyOptional({
    type: () => AuthorSummary,
    description: "Present on /posts responses; a user's own posts leave it out.",
  })
  author?: AuthorSummary;

  @ApiPropertyOptional({ type: () => [CommentResponse], description: 'Oldest first.' })
  comments?: CommentResponse[];
}
