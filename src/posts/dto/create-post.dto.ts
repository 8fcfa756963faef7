import { IsString, Length, Matches, MaxLength } from 'class-validator';

export class CreatePostDto {
  @IsString()
  @Length(1, 200)
  @Matches(/\S/, { message: 'title must not be blank' })
  title!: string;

  @IsString()
  @MaxLength(20_000)
  body!: string;
}
