import { Type } from 'class-transformer';
import { IsEmail, IsIn, IsObject, IsOptional, IsString, Matches, MaxLength, ValidateNested } from 'class-validator';
import { IsPassword } from '../../auth/passwords';
import { IsOptionalNonNull, NormalizeNfc } from '../../http/validation';
import { type Role, ROLES } from '../entities/user.entity';
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

  /**
   * A new address: on one's own account it needs `currentPassword` (a change of letter case only does
   * not); it is unverified until the link mailed there is used.
   * @example "ada.king@example.com"
   */
  @IsOptionalNonNull()
  @NormalizeNfc()
  @IsString()
  @IsEmail()
  @MaxLength(254)
  email?: string;

  /**
   * A new password: on one's own account it needs `currentPassword` (admins too); ends the user's other sessions.
   * @example "a new passphrase, long enough"
   */
  @IsOptionalNonNull()
  @IsPassword()
  password?: string;

  /**
   * The caller's current password, when they change their own `password` or `email` (400 when missing,
   * 403 when wrong; an admin changing another user's needs none).
   * @example "correct horse battery staple"
   */
  @IsOptionalNonNull()
  @IsString()
  @MaxLength(1024)
  currentPassword?: string;

  /**
   * Admins only. The last admin cannot give up the role (409).
   * @example "user"
   */
  @IsOptionalNonNull()
  @IsIn(ROLES)
  role?: Role;

  @IsOptional() // null is meaningful here: remove the profile
  @IsObject()
  @ValidateNested()
  @Type(() => ProfileDto)
  profile?: ProfileDto | null;
}

/**
 * The request examples of PATCH /users/{id}, first the one Swagger UI's "Try it out" pre-fills: what a
 * signed-in user may change on their own account (the field examples together would include `role`,
 * which only admins may send: 403).
 */
export const UPDATE_USER_EXAMPLES = {
  'own account': {
    summary: 'A user renames themself',
    value: { name: 'Ada King', profile: { bio: 'Mathematician; wrote the first published program.' } },
  },
  'new password': {
    summary: 'A user changes their password (the current one is needed; an admin changing another user’s may omit it)',
    value: { password: 'a new passphrase, long enough', currentPassword: 'correct horse battery staple' },
  },
  'role (admins only)': { summary: 'An admin makes a user an admin', value: { role: 'admin' } },
};
