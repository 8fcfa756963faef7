import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { NESTED_LIMIT } from '../../http/pagination.query';
import { PostResponse } from '../../posts/dto/post.response';
import { type Role, ROLES } from '../entities/user.entity';

// Response DTOs are allowlists: a property is sent only when it is declared here with @ApiProperty.
// The documented schema is also the serializer (http/response-serialization.ts), so controllers
// return entities as they are and a new entity column never leaks by accident.

export class ProfileResponse {
  @ApiProperty() bio!: string;
  @ApiProperty({ type: String, nullable: true }) avatarUrl!: string | null;
}

/**
 * Properties only the user themself and admins see (auth/access-policy.ts, mayReadPrivateFields).
 * They are optional in the schema, and the schema is the serializer: a property left undefined is
 * not written at all. So a controller hides them by unsetting them (hidePrivateFields), one place.
 */
export const PRIVATE_USER_FIELDS = ['email', 'emailVerified', 'role'] as const;
const PRIVATE = 'Present only when the caller is this user or an admin.';

export class UserResponse {
  @ApiProperty() id!: number;
  @ApiProperty() name!: string;
  @ApiPropertyOptional({ description: PRIVATE }) email?: string;
  @ApiPropertyOptional({
    description: `Whether the user proved they read mail at \`email\` (POST /auth/verify-email). ${PRIVATE}`,
  })
  emailVerified?: boolean;
  @ApiPropertyOptional({ enum: ROLES, description: PRIVATE }) role?: Role;
  @ApiProperty() createdAt!: Date;
  @ApiProperty() updatedAt!: Date;

  @ApiPropertyOptional({
    type: () => ProfileResponse,
    nullable: true,
    description: 'Absent when not included; null when the user has no profile.',
  })
  profile?: ProfileResponse | null;

  @ApiPropertyOptional({
    type: () => [PostResponse],
    maxItems: NESTED_LIMIT,
    description: `The user's newest ${NESTED_LIMIT} posts at most, newest first (\`postsNext\` leads to the rest); absent when not included.`,
  })
  posts?: PostResponse[];

  @ApiPropertyOptional({
    format: 'uri-reference',
    description:
      `Present only when posts are included and the user has more than the ${NESTED_LIMIT} in \`posts\`: the path of ` +
      'the next page of `GET /users/{id}/posts` (a keyset cursor after the last one embedded). Absent: `posts` holds them all.',
    example: '/users/7/posts?limit=20&cursor=WyJ…',
  })
  postsNext?: string;
}
