import { Column, CreateDateColumn, Entity, Index, PrimaryGeneratedColumn } from 'typeorm';

/**
 * The mail outbox: a mail to send, written in the same transaction as the event that sends it
 * (sign-up, reset request, email change), so a mail exists exactly when its event committed. The
 * worker (mail/mail-worker.ts) claims due rows, sends them, and deletes each once the SMTP server
 * accepted it; a row left here is either waiting (`next_attempt_at`) or given up (`failed_at`).
 */
@Entity('mail_outbox')
@Index('mail_outbox_next_attempt_at_idx', ['nextAttemptAt'])
export class OutboundMail {
  @PrimaryGeneratedColumn('identity', { generatedIdentity: 'ALWAYS' })
  id!: number;

  /** One address (RFC 5322 addr-spec), as the user gave it. */
  @Column({ type: 'varchar', length: 254 })
  recipient!: string;

  @Column({ type: 'varchar', length: 255 })
  subject!: string;

  /** Plain text (UTF-8). Holds the link with its token until the mail is sent and the row deleted. */
  @Column({ type: 'text' })
  body!: string;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz', precision: 3 })
  createdAt!: Date;

  /** Delivery attempts started (a claim counts one). */
  @Column({ type: 'integer', default: 0 })
  attempts!: number;

  /**
   * When the worker may take the row: the next retry after a failure, and while a worker is
   * sending it, the end of that worker's lease (a crashed worker's mail is taken again after it).
   */
  @Column({ name: 'next_attempt_at', type: 'timestamptz', precision: 3 })
  nextAttemptAt!: Date;

  /** Set when MAIL_MAX_ATTEMPTS deliveries failed: the worker leaves the row alone from then on. */
  @Column({ name: 'failed_at', type: 'timestamptz', precision: 3, nullable: true })
  failedAt!: Date | null;

  /** Why the last attempt failed (the SMTP server's answer or the connection error), for operators. */
  @Column({ name: 'last_error', type: 'varchar', length: 500, nullable: true })
  lastError!: string | null;
}
