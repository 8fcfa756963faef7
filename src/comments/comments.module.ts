import { Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { AuthModule } from '../auth/auth.module';
import { registerConstraintProblems } from '../database/errors/constraint-problems';
import { CursorModule } from '../http/cursor';
import { Post } from '../posts/entities/post.entity';
import { commentsConstraints } from './comments.constraints';
import { CommentsController } from './comments.controller';
import { CommentsRepository } from './comments.repository';
import { CommentsService } from './comments.service';
import { Comment } from './entities/comment.entity';

@Module({
  imports: [TypeOrmModule.forFeature([Comment, Post]), AuthModule, CursorModule],
  controllers: [CommentsController],
  providers: [CommentsRepository, CommentsService],
  exports: [CommentsService],
})
export class CommentsModule {
  constructor() {
    registerConstraintProblems(commentsConstraints);
  }
}
