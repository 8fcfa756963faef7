import { Expose, plainToInstance, Type } from 'class-transformer';
import { PostResponse } from '../../posts/dto/post.response';
import type { User } from '../entities/user.entity';

export class ProfileResponse {
  @Expose() bio!: string;
  @Expose() avatarUrl!: string | null;
}

/** The public shape of a user: an allowlist, so a new entity column never leaks by accident. */
export class UserResponse {
  @Expose() id!: number;
  @Expose() name!: string;
  @Expose() email!: string;
  @Expose() createdAt!: Date;
  @Expose() updatedAt!: Date;
  /** Absent when not included; null when the user has no profile. */
  @Expose() @Type(() => ProfileResponse) profile?: ProfileResponse | null;
  @Expose() @Type(() => PostResponse) posts?: PostResponse[];

  static from(user: User): UserResponse {
    return plainToInstance(UserResponse, user, {
      excludeExtraneousValues: true,
      exposeUnsetFields: false,
    });
  }
}
