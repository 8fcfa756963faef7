import { IsInt, IsString, Matches, Max, MaxLength, Min } from 'class-validator';

export class CreateCommentDto {
  @IsInt()
  @Min(1)
  @Max(2_147_483_647)
  authorId!: number;

  @IsString()
  @MaxLength(5_000)
  @Matches(/\S/, { message: 'body must not be blank' })
  body!: string;
}
