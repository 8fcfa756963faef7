import { ApiPropertyOptional } from '@nestjs/swagger';
import { IsOptional, IsString, Max, MaxLength, Min } from 'class-validator';
import { IsDecimalInteger } from './validation';

export const DEFAULT_LIMIT = 20;
export const MAX_LIMIT = 100;
/**
 * How many rows of a nested collection a response embeds (a post's comments, a user's posts): the
 * first page of that collection's own list, so one response's size and cost do not grow with the
 * collection. When there are more, the parent carries a link to the next page (`commentsNext`,
 * `postsNext`); docs/api.md.
 */
export const NESTED_LIMIT = DEFAULT_LIMIT;
/**
 * The largest `offset` a list accepts. An offset page reads and throws away `offset` rows, so its
 * cost grows with the offset; beyond this, clients page with `cursor` (the next Link), whose cost
 * does not grow (docs/scale.md).
 */
export const MAX_OFFSET = 1000;

/** `?limit=` for list endpoints; out of range is rejected, not clamped. */
export class LimitQuery {
  @ApiPropertyOptional({ type: 'integer', minimum: 1, maximum: MAX_LIMIT, default: DEFAULT_LIMIT })
  @IsOptional()
  @IsDecimalInteger()
  @Min(1)
  @Max(MAX_LIMIT)
  limit: number = DEFAULT_LIMIT;
}

/** `?limit=&cursor=` for keyset-paginated lists. */
export class CursorQuery extends LimitQuery {
  /**
   * The opaque position from the previous page's `Link: rel="next"`; valid only for the list, sort
   * and filters that issued it (else 400). Absent: the first page.
   */
  @ApiPropertyOptional({ type: String, maxLength: 2048 })
  @IsOptional()
  @IsString()
  @MaxLength(2048)
  cursor?: string;
}

/** `?limit=&cursor=` plus `offset` (bounded by MAX_OFFSET; not together with `cursor`). */
export class PaginationQuery extends CursorQuery {
  @ApiPropertyOptional({
    type: 'integer',
    minimum: 0,
    maximum: MAX_OFFSET,
    default: 0,
    description: `Rows to skip, at most ${MAX_OFFSET}; page further with \`cursor\` (the next Link).`,
  })
  @IsOptional()
  @IsDecimalInteger()
  @Min(0)
  @Max(MAX_OFFSET, {
    message: `offset must not be greater than ${MAX_OFFSET}: page further with cursor, from the Link header's rel="next"`,
  })
  offset: number = 0;
}
