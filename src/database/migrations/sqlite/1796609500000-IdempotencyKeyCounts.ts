import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * idempotency_key_counts: keys stored per signed-in caller per key lifetime window, the per-caller
 * cap's two-row check (src/idempotency/, docs/idempotency.md).
 */
export class IdempotencyKeyCounts1796609500000 implements MigrationInterface {
  name = 'IdempotencyKeyCounts1796609500000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      `CREATE TABLE "idempotency_key_counts" ("scope" varchar(40) NOT NULL, "window_start" bigint NOT NULL, "key_count" integer NOT NULL, PRIMARY KEY ("scope", "window_start"))`,
    );
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE "idempotency_key_counts"`);
  }
}
