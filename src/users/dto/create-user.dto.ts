import { Type } from 'class-transformer';
import {
  ArrayMaxSize,
  IsArray,
  IsEmail,
  IsOptional,
  IsString,
  IsUrl,
  Length,
  Matches,
  MaxLength,
  ValidateNested,
} from 'class-validator';
import { IsPassword } from '../../auth/passwords';
import { IsOptionalNonNull } from '../../http/validation';
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
  @IsString()
  @Length(1, 100)
  @Matches(/\S/, { message: 'name must not be blank' })
  name!: string;

  @IsEmail()
  @MaxLength(254)
  email!: string;

  /** 15 to 128 characters, nothing else required (NIST SP 800-63B); stored only as an argon2id hash. */
  @IsPassword()
  password!: string;

  @IsOptional()
  @ValidateNested()
  @Type(() => ProfileDto)
  profile?: ProfileDto;

  /** Initial posts, written in the same transaction as the user. */
  @IsOptionalNonNull()
  @IsArray()
  @ArrayMaxSize(20)
  @ValidateNested({ each: true })
  @Type(() => CreatePostDto)
  posts?: CreatePostDto[];
}
