import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * idempotency_key_counts.shard: a caller's window counter spread over rows (IdempotencyKeyCount), so one
 * caller's concurrent keyed writes do not queue on one row lock. Existing counts become shard 0; down
 * adds the shards back into shard 0.
 */
export class IdempotencyKeyCountShards1796624681750 implements MigrationInterface {
  name = 'IdempotencyKeyCountShards1796624681750';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE "idempotency_key_counts" ADD "shard" smallint NOT NULL DEFAULT 0`);
    await queryRunner.query(`ALTER TABLE "idempotency_key_counts" ALTER COLUMN "shard" DROP DEFAULT`);
    await queryRunner.query(`ALTER TABLE "idempotency_key_counts" DROP CONSTRAINT "idempotency_key_counts_pkey"`);
    await queryRunner.query(
      `ALTER TABLE "idempotency_key_counts" ADD CONSTRAINT "idempotency_key_counts_pkey" PRIMARY KEY ("scope", "window_start", "shard")`,
    );
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      `INSERT INTO "idempotency_key_counts" ("scope", "window_start", "shard", "key_count") ` +
        `SELECT "scope", "window_start", 0, sum("key_count") FROM "idempotency_key_counts" WHERE "shard" <> 0 GROUP BY "scope", "window_start" ` +
        `ON CONFLICT ("scope", "window_start", "shard") DO UPDATE SET "key_count" = "idempotency_key_counts"."key_count" + EXCLUDED."key_count"`,
    );
    await queryRunner.query(`DELETE FROM "idempotency_key_counts" WHERE "shard" <> 0`);
    await queryRunner.query(`ALTER TABLE "idempotency_key_counts" DROP CONSTRAINT "idempotency_key_counts_pkey"`);
    await queryRunner.query(
      `ALTER TABLE "idempotency_key_counts" ADD CONSTRAINT "idempotency_key_counts_pkey" PRIMARY KEY ("scope", "window_start")`,
    );
    await queryRunner.query(`ALTER TABLE "idempotency_key_counts" DROP COLUMN "shard"`);
  }
}
