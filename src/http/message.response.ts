import { ApiProperty } from '@nestjs/swagger';

/** The body of a successful DELETE, e.g. `{"message": "User deleted"}`. */
export class MessageResponse {
  @ApiProperty({ example: 'User deleted' }) message!: string;
}
