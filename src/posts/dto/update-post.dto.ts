import { IsString, Matches, MaxLength } from 'class-validator';
import { IsOptionalNonNull, NormalizeNfc } from '../../http/validation';

/** PATCH semantics: absent fields stay as they are; null is not a title or a body. */
export class UpdatePostDto {
  /** @example "Notes on the Analytical Engine, revised" */
  @IsOptionalNonNull()
  @NormalizeNfc()
  @IsString()
  @MaxLength(200)
  @Matches(/\S/, { message: 'title must not be blank' })
  title?: string;

  /** @example "Note G computes the Bernoulli numbers." */
  @IsOptionalNonNull()
  @IsString()
  @MaxLength(20_000)
  body?: string;
}
