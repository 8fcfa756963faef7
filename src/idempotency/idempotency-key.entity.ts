import { Column, Entity, Index, PrimaryColumn } from 'typeorm';

/**
 * One Idempotency-Key a caller used (draft-ietf-httpapi-idempotency-key-header-07), with the response
 * its request got. The row is written in the write's own transaction (see IdempotencyInterceptor):
 * a committed write always has its key, a rolled-back one never does. 4xx outcomes, whose write
 * rolled back, are stored by a small transaction of their own. No foreign key to users: a user
 * deleting themself keeps the key of that DELETE, so its retry replays instead of answering 404.
 */
@Entity('idempotency_keys')
@Index('idempotency_keys_expires_at_idx', ['expiresAt'])
export class IdempotencyKey {
  /** Whose key: `user:<id>` for a signed-in caller, `anonymous` for sign-up (then the fingerprint must match too). */
  @PrimaryColumn({ type: 'varchar', length: 40, primaryKeyConstraintName: 'idempotency_keys_pkey' })
  scope!: string;

  /**
   * SHA-256 (hex) of the key the client sent: fixed length, and compared exactly on every dialect
   * (MariaDB's default collation would take `Key` and `key` for one).
   */
  @PrimaryColumn({ name: 'key_hash', type: 'varchar', length: 64, primaryKeyConstraintName: 'idempotency_keys_pkey' })
  keyHash!: string;

  /** HMAC-SHA256 (base64url) of method, route pattern, canonical body and If-Match/If-None-Match. */
  @Column({ type: 'varchar', length: 43 })
  fingerprint!: string;

  /** The stored response's status; null only inside the transaction that is producing it. */
  @Column({ name: 'response_status', type: 'integer', nullable: true })
  responseStatus!: number | null;

  /** The stored response's headers that matter (Content-Type, Location, ETag), as a JSON object. */
  @Column({ name: 'response_headers', type: 'text', nullable: true })
  responseHeaders!: string | null;

  /** The stored response's body, exactly as it was sent. */
  @Column({ name: 'response_body', type: 'text', nullable: true })
  responseBody!: string | null;

  @Column({ name: 'created_at', type: 'timestamptz', precision: 3 })
  createdAt!: Date;

  /** After this the key is forgotten (IDEMPOTENCY_KEY_TTL_SECONDS): purged in batches, and reusable. */
  @Column({ name: 'expires_at', type: 'timestamptz', precision: 3 })
  expiresAt!: Date;
}

/**
 * How many keys one signed-in caller stored in one window of IDEMPOTENCY_KEY_TTL_SECONDS (the
 * per-caller cap, docs/idempotency.md). Every live key was stored in the current window or the one
 * before, so their two counters bound the caller's live keys: the cap is checked by reading two rows,
 * never by counting keys (their rows: one per shard at most). Incremented by the statement that stores a key's response, in its
 * transaction; rows of windows that ended a window ago are purged with the expired keys.
 */
@Entity('idempotency_key_counts')
export class IdempotencyKeyCount {
  @PrimaryColumn({ type: 'varchar', length: 40, primaryKeyConstraintName: 'idempotency_key_counts_pkey' })
  scope!: string;

  /** The window's start, in milliseconds since the epoch: a multiple of the key lifetime. */
  @PrimaryColumn({
    name: 'window_start',
    type: 'bigint',
    primaryKeyConstraintName: 'idempotency_key_counts_pkey',
  })
  windowStart!: string;

  /**
   * One of COUNTER_SHARDS rows per caller and window, picked per key: one caller's concurrent keyed
   * writes increment different rows, so they do not queue on one row lock from store to COMMIT. The
   * cap check sums the window's rows.
   */
  @PrimaryColumn({ type: 'smallint', primaryKeyConstraintName: 'idempotency_key_counts_pkey' })
  shard!: number;

  /** Keys the caller stored in this window (committed: a rolled-back write's key is not counted). */
  @Column({ name: 'key_count', type: 'integer' })
  keyCount!: number;
}
