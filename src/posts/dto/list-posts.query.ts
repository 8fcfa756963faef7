import { ApiPropertyOptional } from '@nestjs/swagger';
import { IsIn, IsOptional, IsString, Max, MaxLength, Min, MinLength } from 'class-validator';
import { PaginationQuery } from '../../http/pagination.query';
import { IsDecimalInteger, NormalizeNfc } from '../../http/validation';

export const POST_SORTS = ['createdAt', '-createdAt', 'title', '-title'] as const;
export type PostSort = (typeof POST_SORTS)[number];
/**
 * How many posts of the list one request with `q` walks (in the list's order, past the cursor) before
 * it answers with what it found and a cursor to go on, when no title index serves `q` (ADR 0017).
 */
export const Q_SCAN_ROWS = 1000;

export class ListPostsQuery extends PaginationQuery {
  /** Only posts by this user. */
  @ApiPropertyOptional({ type: 'integer', minimum: 1, maximum: 2_147_483_647 })
  @IsOptional()
  @IsDecimalInteger()
  @Min(1)
  @Max(2_147_483_647)
  authorId?: number;

  /** Case-insensitive substring of the title; its bounded reads: ADR 0017, docs/scale.md. */
  @ApiPropertyOptional({
    minLength: 1,
    maxLength: 200,
    description:
      "Case-insensitive substring of the title (NFC, as titles are stored; LIKE's wildcards match themselves). " +
      'Case folds one character at a time, per database: on PostgreSQL and MariaDB/MySQL `σοφος` does not find ' +
      '`ΣΟΦΟΣ` (final sigma) and `istanbul` finds `İSTANBUL`; on SQLite the reverse; `straße` never finds ' +
      '`STRASSE` (docs/api.md, Text). ' +
      `A request reads at most ${Q_SCAN_ROWS} posts of the list past its start, then continues from a title ` +
      'index when one serves `q` (PostgreSQL and SQLite, for 3 characters or more) and that read is bounded. ' +
      'Where none does (MariaDB/MySQL; a 1- or 2-character `q`), or `q` matches too many titles past that start ' +
      'for one bounded read, **a page may hold fewer than `limit` posts, even none, and still have a `next` ' +
      'link**: follow it until there is none. Not with an `offset` above 0 (400): page with `cursor`.',
  })
  @IsOptional()
  @NormalizeNfc()
  @IsString()
  @MinLength(1, { message: 'q must not be empty (a substring of the title)' })
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
