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
  @IsOptionalNonNull()
  @IsString()
  @MaxLength(1000)
  bio?: string;

  @IsOptional()
  @IsUrl({ protocols: ['http', 'https'], require_protocol: true })
  @MaxLength(2048)
  avatarUrl?: string | null;
}

export class CreateUserDto {
  /** Stored in Unicode NFC, so one name has one spelling. */
  @NormalizeNfc()
  @IsString()
  @MaxLength(100)
  @Matches(/\S/, { message: 'name must not be blank' })
  name!: string;

  /** Stored in Unicode NFC: `josé` composed or decomposed is one address to the unique index. */
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
