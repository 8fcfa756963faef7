import { Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { AuthModule } from '../auth/auth.module';
import { CursorCodec } from '../http/cursor';
import { APP_CONFIG, type AppConfig } from '../config/app.config';
import { Post } from '../posts/entities/post.entity';
import { CommentsController } from './comments.controller';
import { CommentsService } from './comments.service';
import { Comment } from './entities/comment.entity';

@Module({
  imports: [TypeOrmModule.forFeature([Comment, Post]), AuthModule],
  controllers: [CommentsController],
  providers: [
    CommentsService,
    {
      provide: CursorCodec,
      inject: [APP_CONFIG],
      useFactory: (config: AppConfig) => new CursorCodec(config.cursorSecret),
    },
  ],
  exports: [CommentsService],
})
export class CommentsModule {}
