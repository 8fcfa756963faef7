import { Column, CreateDateColumn, Entity, Index, JoinColumn, ManyToOne, PrimaryColumn } from 'typeorm';
import { User } from '../../users/entities/user.entity';

/** What a token mailed to a user lets them do. */
export const ACCOUNT_TOKEN_PURPOSES = ['verify_email', 'password_reset'] as const;
export type AccountTokenPurpose = (typeof ACCOUNT_TOKEN_PURPOSES)[number];

/**
 * Single-use tokens sent by mail (email verification, password reset), stored only as their SHA-256
 * like refresh tokens. A token is bound to the address it was sent to: once the user's email is
 * another, it no longer works.
 */
@Entity('account_tokens')
@Index('account_tokens_user_id_idx', ['userId'])
export class AccountToken {
  /** SHA-256 of the token (32 random bytes): a fast hash is enough for 256 bits of entropy. */
  @PrimaryColumn({ name: 'token_hash', type: 'bytea' })
  tokenHash!: Buffer;

  @Column({ name: 'user_id', type: 'integer' })
  userId!: number;

  @Column({ type: 'varchar', length: 20 })
  purpose!: AccountTokenPurpose;

  /** The address the token was mailed to. */
  @Column({ type: 'varchar', length: 254 })
  email!: string;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz', precision: 3 })
  createdAt!: Date;

  @Column({ name: 'expires_at', type: 'timestamptz', precision: 3 })
  expiresAt!: Date;

  /** Set when the token was used (or superseded): it never works again. */
  @Column({ name: 'used_at', type: 'timestamptz', precision: 3, nullable: true })
  usedAt!: Date | null;

  @ManyToOne(() => User, { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'user_id', foreignKeyConstraintName: 'account_tokens_user_id_fkey' })
  user?: User;
}
