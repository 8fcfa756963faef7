import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { PostResponse } from '../../posts/dto/post.response';

// Response DTOs are allowlists: a property is sent only when it is declared here with @ApiProperty.
// The documented schema is also the serializer (http/response-serialization.ts), so controllers
// return entities as they are and a new entity column never leaks by accident.

export class ProfileResponse {
  @ApiProperty() bio!: string;
  @ApiProperty({ type: String, nullable: true }) avatarUrl!: string | null;
}

export class UserResponse {
  @ApiProperty() id!: number;
  @ApiProperty() name!: string;
  @ApiProperty() email!: string;
  @ApiProperty() createdAt!: Date;
  @ApiProperty() updatedAt!: Date;

  @ApiPropertyOptional({
    type: () => ProfileResponse,
    nullable: true,
    description: 'Absent when not included; null when the user has no profile.',
  })
  profile?: ProfileResponse | null;

  @ApiPropertyOptional({ type: () => [PostResponse], description: 'Newest first; absent when not included.' })
  posts?: PostResponse[];
}
