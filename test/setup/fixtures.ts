import type { DataSource } from 'typeorm';
import { querySql } from './dialect';
import { Comment } from '../../src/comments/entities/comment.entity';
import { Post } from '../../src/posts/entities/post.entity';
import { Profile } from '../../src/users/entities/profile.entity';
import { User } from '../../src/users/entities/user.entity';

/** Direct inserts for arranging state; the behaviour under test always goes through HTTP. */
export function fixtures(dataSource: DataSource) {
  return {
    async user(
      name: string,
      email = `${name.toLowerCase().replace(/\W/g, '')}-${Math.random().toString(36).slice(2)}@example.com`,
    ) {
      return dataSource.getRepository(User).save({ name, email });
    },
    async profile(userId: number, bio = 'bio') {
      return dataSource.getRepository(Profile).save({ userId, bio });
    },
    async post(authorId: number, title = 'A post') {
      return dataSource.getRepository(Post).save({ authorId, title, body: `${title} body` });
    },
    async comment(postId: number, authorId: number, body = 'A comment') {
      return dataSource.getRepository(Comment).save({ postId, authorId, body });
    },
    count(table: 'users' | 'profiles' | 'posts' | 'comments'): Promise<number> {
      return querySql<{ n: number }[]>(dataSource, `SELECT count(*)::int AS n FROM ${table}`).then((rows) => rows[0].n);
    },
  };
}
