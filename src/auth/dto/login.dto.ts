import { IsString, MaxLength } from 'class-validator';

/** `POST /auth/login`. Not checked for format: any wrong email or password is the same 401. */
export class LoginDto {
  @IsString()
  @MaxLength(254)
  email!: string;

  @IsString()
  @MaxLength(1024)
  password!: string;
}

/** `POST /auth/refresh`. */
export class RefreshDto {
  /** The `refreshToken` of the last login or refresh answer; each one works once. */
  @IsString()
  @MaxLength(200)
  refreshToken!: string;
}
