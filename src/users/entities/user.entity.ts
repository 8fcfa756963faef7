import {
  Column,
  CreateDateColumn,
  Entity,
  Index,
  OneToMany,
  OneToOne,
  PrimaryGeneratedColumn,
  UpdateDateColumn,
  VersionColumn,
} from 'typeorm';
import { Comment } from '../../comments/entities/comment.entity';
import { Post } from '../../posts/entities/post.entity';
import { Profile } from './profile.entity';

// Relations are neither eager nor lazy: whoever needs them loads them explicitly and in batches
// (see UsersService), so a relation never loads silently one row at a time.
@Entity('users')
@Index('users_name_id_idx', ['name', 'id'])
// Case-insensitive uniqueness lives in the migration as UNIQUE INDEX on lower(email);
// TypeORM cannot express an expression index, so it must not try to sync it.
@Index('users_email_lower_key', { synchronize: false })
export class User {
  @PrimaryGeneratedColumn('identity', { generatedIdentity: 'ALWAYS' })
  id!: number;

  @Column({ type: 'varchar', length: 100 })
  name!: string;

  @Column({ type: 'varchar', length: 254 })
  email!: string;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz', precision: 3 })
  createdAt!: Date;

  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz', precision: 3 })
  updatedAt!: Date;

  /** Incremented by every UPDATE; the ETag carries it and If-Match is checked against it in SQL. */
  @VersionColumn({ default: 1 })
  version!: number;

  @OneToOne(() => Profile, (profile) => profile.user)
  profile?: Profile | null;

  @OneToMany(() => Post, (post) => post.author)
  posts?: Post[];

  @OneToMany(() => Comment, (comment) => comment.author)
  comments?: Comment[];
}
