import { IsString, MaxLength } from 'class-validator';
import { NormalizeNfc } from '../../http/validation';

/** `POST /auth/login`. Not checked for format: any wrong email or password is the same 401. */
export class LoginDto {
  /** @example "ada@example.com" */
  @NormalizeNfc() // as sign-up stores it: a decomposed "é" finds the account
  @IsString()
  @MaxLength(254)
  email!: string;

  /** @example "correct horse battery staple" */
  @IsString()
  @MaxLength(1024)
  password!: string;
}

/** `POST /auth/refresh`. */
export class RefreshDto {
  /**
   * The `refreshToken` of the last login or refresh answer; each one works once.
   * @example "kq0I3tL0E1o5x9Qm2bW8cZ7vN4yR6uS1aP3dF5gH7jK"
   */
  @IsString()
  @MaxLength(200)
  refreshToken!: string;
}
