import { Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { AuthModule } from '../auth/auth.module';
import { registerConstraintProblems } from '../database/errors/constraint-problems';
import { CommentsModule } from '../comments/comments.module';
import { CursorModule } from '../http/cursor';
import { User } from '../users/entities/user.entity';
import { Post } from './entities/post.entity';
import { postsConstraints } from './posts.constraints';
import { PostsController } from './posts.controller';
import { PostsRepository } from './posts.repository';
import { PostsService } from './posts.service';

@Module({
  imports: [TypeOrmModule.forFeature([Post, User]), CommentsModule, AuthModule, CursorModule],
  controllers: [PostsController],
  providers: [PostsRepository, PostsService],
  exports: [PostsService],
})
export class PostsModule {
  constructor() {
    registerConstraintProblems(postsConstraints);
  }
}
