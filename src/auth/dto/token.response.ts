import { ApiProperty } from '@nestjs/swagger';

/** Login and refresh answer (RFC 6749 §5.1 names). */
export class TokenResponse {
  @ApiProperty({ description: 'Send as `Authorization: Bearer <accessToken>`' }) accessToken!: string;
  @ApiProperty({ enum: ['Bearer'] }) tokenType!: 'Bearer';
  @ApiProperty({ description: 'Seconds until the access token expires' }) expiresIn!: number;
  @ApiProperty({ description: 'Opaque; exchange it once at POST /auth/refresh for a new pair' })
  refreshToken!: string;
}
