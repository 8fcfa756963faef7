import { Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { AuthModule } from '../auth/auth.module';
import { registerConstraintProblems } from '../database/errors/constraint-problems';
import { CursorModule } from '../http/cursor';
import { PostsModule } from '../posts/posts.module';
import { Profile } from './entities/profile.entity';
import { User } from './entities/user.entity';
import { usersConstraints } from './users.constraints';
import { UsersController } from './users.controller';
import { UsersRepository } from './users.repository';
import { UsersService } from './users.service';

@Module({
  imports: [TypeOrmModule.forFeature([User, Profile]), PostsModule, AuthModule, CursorModule],
  controllers: [UsersController],
  providers: [UsersRepository, UsersService],
  exports: [UsersService],
})
export class UsersModule {
  constructor() {
    registerConstraintProblems(usersConstraints);
  }
}
