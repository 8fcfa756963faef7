import { Type } from 'class-transformer';
import { ArrayMaxSize, IsArray, IsString, Length, Matches, MaxLength, ValidateNested } from 'class-validator';
import { IsOptionalNonNull } from '../../http/validation';
import { CreateCommentDto } from '../../comments/dto/create-comment.dto';

export class CreatePostDto {
  /** @example "Notes on the Analytical Engine" */
  @IsString()
  @Length(1, 200)
  @Matches(/\S/, { message: 'title must not be blank' })
  title!: string;

  /** @example "The engine weaves algebraic patterns as the Jacquard loom weaves flowers and leaves." */
  @IsString()
  @MaxLength(20_000)
  body!: string;
}

/** `POST /users/{id}/posts`: a post and its initial comments, stored in one transaction. */
export class CreatePostWithCommentsDto extends CreatePostDto {
  @IsOptionalNonNull()
  @IsArray()
  @ArrayMaxSize(50)
  @ValidateNested({ each: true })
  @Type(() => CreateCommentDto)
  comments?: CreateCommentDto[];
}
