import { IsInt, IsString, Matches, Max, MaxLength, Min } from 'class-validator';

export class CreateCommentDto {
  /**
   * Id of an existing user (422 if there is none).
   * @example 1
   */
  @IsInt()
  @Min(1)
  @Max(2_147_483_647)
  authorId!: number;

  /** @example "Clear and convincing." */
  @IsString()
  @MaxLength(5_000)
  @Matches(/\S/, { message: 'body must not be blank' })
  body!: string;
}
