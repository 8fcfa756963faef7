import { ApiPropertyOptional } from '@nestjs/swagger';
import { IsOptional, Max, Min } from 'class-validator';
import { IsDecimalInteger } from './validation';

export const DEFAULT_LIMIT = 20;
export const MAX_LIMIT = 100;

/** `?limit=` for list endpoints; out of range is rejected, not clamped. */
export class LimitQuery {
  @ApiPropertyOptional({ type: 'integer', minimum: 1, maximum: MAX_LIMIT, default: DEFAULT_LIMIT })
  @IsOptional()
  @IsDecimalInteger()
  @Min(1)
  @Max(MAX_LIMIT)
  limit: number = DEFAULT_LIMIT;
}

/** `?limit=&offset=` for offset-paginated lists. */
export class PaginationQuery extends LimitQuery {
  @ApiPropertyOptional({ type: 'integer', minimum: 0, maximum: 1_000_000, default: 0 })
  @IsOptional()
  @IsDecimalInteger()
  @Min(0)
  @Max(1_000_000)
  offset: number = 0;
}
