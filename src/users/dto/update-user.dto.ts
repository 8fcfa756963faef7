import { Type } from 'class-transformer';
import { IsEmail, IsOptional, IsString, Length, Matches, MaxLength, ValidateNested } from 'class-validator';
import { IsOptionalNonNull } from '../../http/validation';
import { ProfileDto } from './create-user.dto';

/** PATCH semantics: absent fields stay as they are; `profile` fields are merged; `profile: null` removes it. */
export class UpdateUserDto {
  /** @example "Ada King" */
  @IsOptionalNonNull()
  @IsString()
  @Length(1, 100)
  @Matches(/\S/, { message: 'name must not be blank' })
  name?: string;

  /** @example "ada.king@example.com" */
  @IsOptionalNonNull()
  @IsEmail()
  @MaxLength(254)
  email?: string;

  @IsOptional() // null is meaningful here: remove the profile
  @ValidateNested()
  @Type(() => ProfileDto)
  profile?: ProfileDto | null;
}
