import { Type } from 'class-transformer';
import {
  ArrayMaxSize,
  IsArray,
  IsEmail,
  IsObject,
  IsOptional,
  IsString,
  IsUrl,
  Matches,
  MaxLength,
  ValidateNested,
} from 'class-validator';
import { IsOptionalNonNull, NormalizeNfc } from '../../http/validation';
import { CreatePostDto } from '../../posts/dto/create-post.dto';

export class ProfileDto {
  /**
   * A few words about the user.
   * @example "Mathematician; wrote the first published program."
   */
  @IsOptionalNonNull()
  @IsString()
  @MaxLength(1000)
  bio?: string;

  /**
   * Picture of the user (http or https); `null` removes it.
   * @example "https://example.com/avatars/ada.png"
   */
  @IsOptional()
  @IsUrl({ protocols: ['http', 'https'], require_protocol: true })
  @MaxLength(2048)
  avatarUrl?: string | null;
}

export class CreateUserDto {
  /**
   * Display name (need not be unique), stored in Unicode NFC so one name has one spelling.
   * @example "Ada Lovelace"
   */
  @NormalizeNfc()
  @IsString()
  @MaxLength(100)
  @Matches(/\S/, { message: 'name must not be blank' })
  name!: string;

  /**
   * Unique, case-insensitively; stored in Unicode NFC: `josé` composed or decomposed is one address to the unique index.
   * @example "ada@example.com"
   */
  @NormalizeNfc()
  @IsString()
  @IsEmail()
  @MaxLength(254)
  email!: string;

  @IsOptional()
  @IsObject()
  @ValidateNested()
  @Type(() => ProfileDto)
  profile?: ProfileDto;

  /** Initial posts, written in the same transaction as the user. */
  @IsOptionalNonNull()
  @IsArray()
  @ArrayMaxSize(20)
  @IsObject({ each: true })
  @ValidateNested({ each: true })
  @Type(() => CreatePostDto)
  posts?: CreatePostDto[];
}
