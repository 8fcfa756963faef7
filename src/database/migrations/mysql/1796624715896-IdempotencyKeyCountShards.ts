import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * idempotency_key_counts.shard: a caller's window counter spread over rows (IdempotencyKeyCount), so one
 * caller's concurrent keyed writes do not queue on one row lock. Existing counts become shard 0; down
 * adds the shards back into shard 0.
 */
export class IdempotencyKeyCountShards1796624715896 implements MigrationInterface {
  name = 'IdempotencyKeyCountShards1796624715896';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE \`idempotency_key_counts\` ADD \`shard\` smallint NOT NULL DEFAULT 0`);
    await queryRunner.query(`ALTER TABLE \`idempotency_key_counts\` ALTER COLUMN \`shard\` DROP DEFAULT`);
    await queryRunner.query(
      `ALTER TABLE \`idempotency_key_counts\` DROP PRIMARY KEY, ADD PRIMARY KEY (\`scope\`, \`window_start\`, \`shard\`)`,
    );
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      `INSERT INTO \`idempotency_key_counts\` (\`scope\`, \`window_start\`, \`shard\`, \`key_count\`) ` +
        `SELECT \`scope\`, \`window_start\`, 0, total FROM (SELECT \`scope\`, \`window_start\`, sum(\`key_count\`) AS total ` +
        `FROM \`idempotency_key_counts\` WHERE \`shard\` <> 0 GROUP BY \`scope\`, \`window_start\`) AS others ` +
        `ON DUPLICATE KEY UPDATE \`key_count\` = \`key_count\` + VALUES(\`key_count\`)`,
    );
    await queryRunner.query(`DELETE FROM \`idempotency_key_counts\` WHERE \`shard\` <> 0`);
    await queryRunner.query(
      `ALTER TABLE \`idempotency_key_counts\` DROP PRIMARY KEY, ADD PRIMARY KEY (\`scope\`, \`window_start\`)`,
    );
    await queryRunner.query(`ALTER TABLE \`idempotency_key_counts\` DROP COLUMN \`shard\``);
  }
}
