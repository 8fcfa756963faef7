import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * idempotency_keys: the Idempotency-Key of each write and its stored response (src/idempotency/,
 * docs/idempotency.md); expired rows are purged by expires_at.
 */
export class IdempotencyKeys1796586257833 implements MigrationInterface {
  name = 'IdempotencyKeys1796586257833';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
            CREATE TABLE \`idempotency_keys\` (
                \`scope\` varchar(40) NOT NULL,
                \`key_hash\` varchar(64) NOT NULL,
                \`fingerprint\` varchar(43) NOT NULL,
                \`response_status\` int NULL,
                \`response_headers\` mediumtext NULL,
                \`response_body\` mediumtext NULL,
                \`created_at\` datetime(3) NOT NULL,
                \`expires_at\` datetime(3) NOT NULL,
                INDEX \`idempotency_keys_expires_at_idx\` (\`expires_at\`),
                PRIMARY KEY (\`scope\`, \`key_hash\`)
            ) ENGINE = InnoDB
        `);
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
            DROP INDEX \`idempotency_keys_expires_at_idx\` ON \`idempotency_keys\`
        `);
    await queryRunner.query(`
            DROP TABLE \`idempotency_keys\`
        `);
  }
}
