import { IsInt, IsString, Length, Matches, Max, Min } from 'class-validator';
import { IsOptionalNonNull } from '../../http/validation';

export class CreateCommentDto {
  /** Admins only: the comment's author. Absent: the caller (anyone else sending it gets 400). */
  @IsOptionalNonNull()
  @IsInt()
  @Min(1)
  @Max(2_147_483_647)
  authorId?: number;

  @IsString()
  @Length(1, 5_000)
  @Matches(/\S/, { message: 'body must not be blank' })
  body!: string;
}
