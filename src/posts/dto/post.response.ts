import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { CommentResponse } from '../../comments/dto/comment.response';
import { NESTED_LIMIT } from '../../http/pagination.query';

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

  @ApiPropertyOptional({
    type: () => [CommentResponse],
    maxItems: NESTED_LIMIT,
    description: `The post's first ${NESTED_LIMIT} comments at most, oldest first; \`commentsNext\` leads to the rest.`,
  })
  comments?: CommentResponse[];

  @ApiPropertyOptional({
    format: 'uri-reference',
    description:
      `Present only when the post has more than the ${NESTED_LIMIT} comments in \`comments\`: the path of the next ` +
      'page of `GET /posts/{id}/comments` (a keyset cursor after the last one embedded). Absent: `comments` holds them all.',
    example: '/posts/7/comments?limit=20&cursor=WyJ…',
  })
  commentsNext?: string;
}
