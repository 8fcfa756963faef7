import { Type } from 'class-transformer';
import { IsEmail, IsObject, IsOptional, IsString, Matches, MaxLength, ValidateNested } from 'class-validator';
import { IsOptionalNonNull, NormalizeNfc } from '../../http/validation';
import { ProfileDto } from './create-user.dto';

/** PATCH semantics: absent fields stay as they are; `profile` fields are merged; `profile: null` removes it. */
export class UpdateUserDto {
  /** @example "Ada King" */
  @IsOptionalNonNull()
  @NormalizeNfc()
  @IsString()
  @MaxLength(100)
  @Matches(/\S/, { message: 'name must not be blank' })
  name?: string;

  /** @example "ada.king@example.com" */
  @IsOptionalNonNull()
  @NormalizeNfc()
  @IsString()
  @IsEmail()
  @MaxLength(254)
  email?: string;

  @IsOptional() // null is meaningful here: remove the profile
  @IsObject()
  @ValidateNested()
  @Type(() => ProfileDto)
  profile?: ProfileDto | null;
}
