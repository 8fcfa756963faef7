import { ApiProperty } from '@nestjs/swagger';

/** A live session, as `GET /auth/sessions` lists it to its user. */
export class SessionResponse {
  @ApiProperty({ format: 'uuid' }) id!: string;
  @ApiProperty() createdAt!: Date;
  @ApiProperty({ description: 'Last request with one of its access tokens, to about a minute; createdAt until then' })
  lastUsedAt!: Date;
  @ApiProperty({ description: 'When it ends however often it is refreshed' }) expiresAt!: Date;
  @ApiProperty({ type: String, nullable: true, description: 'User-Agent of the login that started it' })
  userAgent!: string | null;
  @ApiProperty({ description: 'true for the session of the access token making this request' }) current!: boolean;
}
