import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * idempotency_key_counts: keys stored per signed-in caller per key lifetime window, the per-caller
 * cap's two-row check (src/idempotency/, docs/idempotency.md).
 */
export class IdempotencyKeyCounts1796609407095 implements MigrationInterface {
  name = 'IdempotencyKeyCounts1796609407095';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
            CREATE TABLE "idempotency_key_counts" (
                "scope" character varying(40) NOT NULL,
                "window_start" bigint NOT NULL,
                "key_count" integer NOT NULL,
                CONSTRAINT "idempotency_key_counts_pkey" PRIMARY KEY ("scope", "window_start")
            )
        `);
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
            DROP TABLE "idempotency_key_counts"
        `);
  }
}
