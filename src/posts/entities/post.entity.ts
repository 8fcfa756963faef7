import {
  Column,
  CreateDateColumn,
  Entity,
  Index,
  JoinColumn,
  ManyToOne,
  OneToMany,
  PrimaryGeneratedColumn,
  UpdateDateColumn,
  VersionColumn,
} from 'typeorm';
import { Comment } from '../../comments/entities/comment.entity';
import { User } from '../../users/entities/user.entity';

@Entity('posts')
// One index per list order and filter (migration ListIndexes, docs/scale.md).
@Index('posts_author_id_created_at_id_idx', ['authorId', 'createdAt', 'id'])
@Index('posts_created_at_id_idx', ['createdAt', 'id'])
@Index('posts_title_id_idx', ['title', 'id'])
@Index('posts_author_id_title_id_idx', ['authorId', 'title', 'id'])
// PostgreSQL's pg_trgm GIN index for `q` lives in the migration only: TypeORM cannot express an operator class.
@Index('posts_title_trgm_idx', { synchronize: false })
export class Post {
  @PrimaryGeneratedColumn('identity', { generatedIdentity: 'ALWAYS' })
  id!: number;

  @Column({ name: 'author_id', type: 'integer' })
  authorId!: number;

  @Column({ type: 'varchar', length: 200 })
  title!: string;

  @Column({ type: 'text' })
  body!: string;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz', precision: 3 })
  createdAt!: Date;

  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz', precision: 3 })
  updatedAt!: Date;

  /** Incremented by every UPDATE; the ETag carries it and If-Match is checked against it in SQL. */
  @VersionColumn({ default: 1 })
  version!: number;

  @ManyToOne(() => User, (user) => user.posts, { onDelete: 'CASCADE' })
  @JoinColumn({
    name: 'author_id',
    foreignKeyConstraintName: 'posts_author_id_fkey',
  })
  author?: User;

  @OneToMany(() => Comment, (comment) => comment.post)
  comments?: Comment[];

  /** Not a column: when `comments` holds only the first page, the path of the next (PostsService.attachComments). */
  commentsNext?: string;
}
