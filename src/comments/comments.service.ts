import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { In, Repository } from 'typeorm';
import { Comment } from './entities/comment.entity';

@Injectable()
export class CommentsService {
  constructor(@InjectRepository(Comment) private readonly comments: Repository<Comment>) {}

  /** All comments of the given posts in one `IN` query (the guide's selectinload), oldest first. */
  findByPostIds(postIds: number[]): Promise<Comment[]> {
    if (postIds.length === 0) return Promise.resolve([]);
    return this.comments.find({
      where: { postId: In(postIds) },
      order: { postId: 'ASC', createdAt: 'ASC', id: 'ASC' },
    });
  }
}
