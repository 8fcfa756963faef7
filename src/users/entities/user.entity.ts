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

/** What an account may do: `admin`s may act on anyone's resources (auth/access-policy.ts). */
export const ROLES = ['user', 'admin'] as const;
export type Role = (typeof ROLES)[number];

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

  /**
   * argon2id PHC string (auth/passwords.ts). Never selected unless asked for by name, and never in a
   * response (UserResponse does not declare it). Null: the account cannot log in (e.g. seeded users).
   */
  @Column({ name: 'password_hash', type: 'varchar', length: 255, nullable: true, select: false })
  passwordHash?: string | null;

  /** True once the user proved they read mail at `email` (POST /auth/verify-email); a new email resets it. */
  @Column({ name: 'email_verified', type: 'boolean', default: false })
  emailVerified!: boolean;

  @Column({ type: 'enum', enum: ROLES, enumName: 'user_role', default: 'user' })
  role!: Role;

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

  /** Not a column: when `posts` holds only the newest page, the path of the next (UsersService.attachPosts). */
  postsNext?: string;

  @OneToMany(() => Comment, (comment) => comment.author)
  comments?: Comment[];
}
