import { IsOptional, IsString, MaxLength } from 'class-validator';
import { LimitQuery } from '../../http/pagination.query';

/** Keyset pagination: `cursor` is the opaque value from the previous page's `Link: rel="next"`. */
export class ListCommentsQuery extends LimitQuery {
  @IsOptional()
  @IsString()
  @MaxLength(200)
  cursor?: string;
}
