import { Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { registerConstraintProblems } from '../db/constraint-problems';
import { CursorCodec } from '../http/cursor';
import { APP_CONFIG, type AppConfig } from '../config/app.config';
import { Post } from '../posts/entities/post.entity';
import { commentsConstraints } from './comments.constraints';
import { CommentsController } from './comments.controller';
import { CommentsRepository } from './comments.repository';
import { CommentsService } from './comments.service';
import { Comment } from './entities/comment.entity';

@Module({
  imports: [TypeOrmModule.forFeature([Comment, Post])],
  controllers: [CommentsController],
  providers: [
    CommentsRepository,
    CommentsService,
    {
      provide: CursorCodec,
      inject: [APP_CONFIG],
      useFactory: (config: AppConfig) => new CursorCodec(config.cursorSecret),
    },
  ],
  exports: [CommentsService],
})
export class CommentsModule {
  constructor() {
    registerConstraintProblems(commentsConstraints);
  }
}
