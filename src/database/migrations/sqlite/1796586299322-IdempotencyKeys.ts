import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * idempotency_keys: the Idempotency-Key of each write and its stored response (src/idempotency/,
 * docs/idempotency.md); expired rows are purged by expires_at.
 */
export class IdempotencyKeys1796586299322 implements MigrationInterface {
  name = 'IdempotencyKeys1796586299322';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
            CREATE TABLE "idempotency_keys" (
                "scope" varchar(40) NOT NULL,
                "key_hash" varchar(64) NOT NULL,
                "fingerprint" varchar(43) NOT NULL,
                "response_status" integer,
                "response_headers" text,
                "response_body" text,
                "created_at" datetime NOT NULL,
                "expires_at" datetime NOT NULL,
                PRIMARY KEY ("scope", "key_hash")
            )
        `);
    await queryRunner.query(`
            CREATE INDEX "idempotency_keys_expires_at_idx" ON "idempotency_keys" ("expires_at")
        `);
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
            DROP INDEX "idempotency_keys_expires_at_idx"
        `);
    await queryRunner.query(`
            DROP TABLE "idempotency_keys"
        `);
  }
}
