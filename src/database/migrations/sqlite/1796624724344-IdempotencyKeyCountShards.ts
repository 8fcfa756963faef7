import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * idempotency_key_counts.shard: a caller's window counter spread over rows (IdempotencyKeyCount), so one
 * caller's concurrent keyed writes do not queue on one row lock. Existing counts become shard 0; down
 * adds the shards back into one row. (SQLite changes a primary key by copying the table.)
 */
export class IdempotencyKeyCountShards1796624724344 implements MigrationInterface {
  name = 'IdempotencyKeyCountShards1796624724344';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      `CREATE TABLE "temporary_idempotency_key_counts" ("scope" varchar(40) NOT NULL, "window_start" bigint NOT NULL, "key_count" integer NOT NULL, "shard" smallint NOT NULL, PRIMARY KEY ("scope", "window_start", "shard"))`,
    );
    await queryRunner.query(
      `INSERT INTO "temporary_idempotency_key_counts"("scope", "window_start", "key_count", "shard") SELECT "scope", "window_start", "key_count", 0 FROM "idempotency_key_counts"`,
    );
    await queryRunner.query(`DROP TABLE "idempotency_key_counts"`);
    await queryRunner.query(`ALTER TABLE "temporary_idempotency_key_counts" RENAME TO "idempotency_key_counts"`);
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE "idempotency_key_counts" RENAME TO "temporary_idempotency_key_counts"`);
    await queryRunner.query(
      `CREATE TABLE "idempotency_key_counts" ("scope" varchar(40) NOT NULL, "window_start" bigint NOT NULL, "key_count" integer NOT NULL, PRIMARY KEY ("scope", "window_start"))`,
    );
    await queryRunner.query(
      `INSERT INTO "idempotency_key_counts"("scope", "window_start", "key_count") SELECT "scope", "window_start", sum("key_count") FROM "temporary_idempotency_key_counts" GROUP BY "scope", "window_start"`,
    );
    await queryRunner.query(`DROP TABLE "temporary_idempotency_key_counts"`);
  }
}
