import { Column, CreateDateColumn, Entity, Index, JoinColumn, ManyToOne, PrimaryGeneratedColumn } from 'typeorm';
import { Post } from '../../posts/entities/post.entity';
import { User } from '../../users/entities/user.entity';

@Entity('comments')
@Index('comments_post_id_created_at_id_idx', ['postId', 'createdAt', 'id'])
@Index('comments_author_id_idx', ['authorId'])
export class Comment {
  @PrimaryGeneratedColumn('identity', { generatedIdentity: 'ALWAYS' })
  id!: number;

  @Column({ name: 'post_id', type: 'integer' })
  postId!: number;

  @Column({ name: 'author_id', type: 'integer' })
  authorId!: number;

  @Column({ type: 'text' })
  body!: string;

  // Millisecond precision, like JSON and Date: a timestamp read back compares equal in SQL, which
  // keyset cursors rely on. All timestamps use it. The database assigns it, under a lock on the post,
  // so a post's comments become visible in (createdAt, id) order: see migration CommentsInKeysetOrder.
  @CreateDateColumn({ name: 'created_at', type: 'timestamptz', precision: 3 })
  createdAt!: Date;

  @ManyToOne(() => Post, (post) => post.comments, { onDelete: 'CASCADE' })
  @JoinColumn({
    name: 'post_id',
    foreignKeyConstraintName: 'comments_post_id_fkey',
  })
  post?: Post;

  @ManyToOne(() => User, (user) => user.comments, { onDelete: 'CASCADE' })
  @JoinColumn({
    name: 'author_id',
    foreignKeyConstraintName: 'comments_author_id_fkey',
  })
  author?: User;
}
