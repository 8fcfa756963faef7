import { applyDecorators } from '@nestjs/common';
import { ApiPropertyOptional } from '@nestjs/swagger';
import { Transform } from 'class-transformer';
import { IsIn, IsOptional } from 'class-validator';
import { PaginationQuery } from '../../http/pagination.query';

export const USER_RELATIONS = ['profile', 'posts', 'posts.comments'] as const;
export type UserRelation = (typeof USER_RELATIONS)[number];

/** Which relations a user response carries. */
export interface UserInclude {
  profile: boolean;
  posts: boolean;
  comments: boolean;
}

/** `?include=profile,posts.comments`: absent means everything, empty means the bare user. */
function IncludeParam() {
  return applyDecorators(
    ApiPropertyOptional({
      type: String,
      description: `Comma-separated relations to load: ${USER_RELATIONS.join(', ')}. Absent: all of them; empty: none.`,
      example: 'profile,posts.comments',
      // Spelled out: the Swagger plugin would list the union's members in the type checker's order,
      // which differs between `nest build` and the tests' compiler (and so would the two documents).
      items: { type: 'string', enum: [...USER_RELATIONS] },
    }),
    IsOptional(),
    Transform(({ value }: { value: unknown }) =>
      [value]
        .flat()
        .join(',')
        .split(',')
        .map((part) => part.trim())
        .filter(Boolean),
    ),
    IsIn(USER_RELATIONS, {
      each: true,
      message: `include must be a comma-separated list of: ${USER_RELATIONS.join(', ')}`,
    }),
  );
}

export function toUserInclude(include: UserRelation[] | undefined): UserInclude {
  if (!include) return { profile: true, posts: true, comments: true };
  const comments = include.includes('posts.comments');
  return {
    profile: include.includes('profile'),
    posts: comments || include.includes('posts'),
    comments,
  };
}

export class GetUserQuery {
  @IncludeParam()
  include?: UserRelation[];
}

export class ListUsersQuery extends PaginationQuery {
  @IncludeParam()
  include?: UserRelation[];
}
