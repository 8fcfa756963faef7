import { IsInt, IsString, Matches, Max, MaxLength, Min } from 'class-validator';
import { IsOptionalNonNull } from '../../http/validation';

export class CreateCommentDto {
  /**
   * Admins only: the comment's author, an existing user (422 if there is none). Absent: the caller;
   * anyone else sending it gets 400.
   * @example 1
   */
  @IsOptionalNonNull()
  @IsInt()
  @Min(1)
  @Max(2_147_483_647)
  authorId?: number;

  /** @example "Clear and convincing." */
  @IsString()
  @MaxLength(5_000)
  @Matches(/\S/, { message: 'body must not be blank' })
  body!: string;
}
