import { Type } from 'class-transformer';
import { ArrayMaxSize, IsArray, IsObject, IsString, Matches, MaxLength, ValidateNested } from 'class-validator';
import { IsOptionalNonNull, NormalizeNfc } from '../../http/validation';
import { CreateCommentDto } from '../../comments/dto/create-comment.dto';

export class CreatePostDto {
  /**
   * Stored in Unicode NFC, as the `q` search is, so a title matches however it was typed.
   * @example "Notes on the Analytical Engine"
   */
  @NormalizeNfc()
  @IsString()
  @MaxLength(200)
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
  @IsObject({ each: true })
  @ValidateNested({ each: true })
  @Type(() => CreateCommentDto)
  comments?: CreateCommentDto[];
}
