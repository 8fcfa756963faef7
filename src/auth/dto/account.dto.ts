import { IsBoolean, IsEmail, IsOptional, IsString, MaxLength } from 'class-validator';
import { BodyMayBeAbsent, NormalizeNfc } from '../../http/validation';
import { IsPassword } from '../passwords';

/** `POST /auth/verify-email`. */
export class VerifyEmailDto {
  /**
   * The token from the verification mail (after `#token=` in its link). Works once.
   * @example "Zk3v0q9L1mXb2cR7tY5wA8nE4hJ6pS0dF1gK3uV7iO2"
   */
  @IsString()
  @MaxLength(200)
  token!: string;
}

/** `POST /auth/password-reset`. Not checked for being an account's address: every request gets the same 202. */
export class PasswordResetRequestDto {
  /** @example "ada@example.com" */
  @NormalizeNfc() // as sign-up stores it
  @IsString()
  @IsEmail()
  @MaxLength(254)
  email!: string;
}

/** `POST /auth/password-reset/confirm`. */
export class PasswordResetConfirmDto {
  /**
   * The token from the reset mail (after `#token=` in its link). Works once, for PASSWORD_RESET_TTL_SECONDS.
   * @example "Zk3v0q9L1mXb2cR7tY5wA8nE4hJ6pS0dF1gK3uV7iO2"
   */
  @IsString()
  @MaxLength(200)
  token!: string;

  /**
   * The new password: the sign-up rules (15 to 128 characters).
   * @example "a new passphrase, long enough"
   */
  @IsPassword()
  password!: string;
}

/** `POST /auth/logout-all`; the body may be left out. */
@BodyMayBeAbsent()
export class LogoutAllDto {
  /**
   * true: the session making this request stays signed in. Default false: it ends too.
   * @example true
   */
  @IsOptional()
  @IsBoolean()
  keepCurrent?: boolean;
}
