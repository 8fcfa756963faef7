import { ApiPropertyOptional } from '@nestjs/swagger';
import { IsIn, IsOptional, IsString, Max, MaxLength, Min, MinLength } from 'class-validator';
import { PaginationQuery } from '../../http/pagination.query';
import { IsDecimalInteger, NormalizeNfc } from '../../http/validation';

export const POST_SORTS = ['createdAt', '-createdAt', 'title', '-title'] as const;
export type PostSort = (typeof POST_SORTS)[number];
/** The shortest `q`: a trigram index serves substrings of three characters or more. */
export const Q_MIN_LENGTH = 3;

export class ListPostsQuery extends PaginationQuery {
  /** Only posts by this user. */
  @ApiPropertyOptional({ type: 'integer', minimum: 1, maximum: 2_147_483_647 })
  @IsOptional()
  @IsDecimalInteger()
  @Min(1)
  @Max(2_147_483_647)
  authorId?: number;

  /**
   * Case-insensitive substring of the title (NFC, as titles are stored), at least 3 characters:
   * PostgreSQL answers it from a trigram index, which a shorter substring cannot use (docs/scale.md).
   */
  @IsOptional()
  @NormalizeNfc()
  @IsString()
  @MinLength(Q_MIN_LENGTH, { message: `q must be at least ${Q_MIN_LENGTH} characters (a substring of the title)` })
  @MaxLength(200)
  q?: string;

  @IsOptional()
  @ApiPropertyOptional({
    enum: POST_SORTS,
    default: '-createdAt',
    description: 'Field to sort by; `-` for descending. Ties are broken by id.',
  })
  @IsIn(POST_SORTS, { message: `sort must be one of: ${POST_SORTS.join(', ')}` })
  sort: PostSort = '-createdAt';
}
