import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The account lifecycle (issue #31) on MariaDB/MySQL, as postgres/…-AccountLifecycle.ts: account_tokens,
 * mail_outbox, users.email_verified (tinyint), sessions.last_used_at and user_agent.
 */
export class AccountLifecycle1796586801832 implements MigrationInterface {
  name = 'AccountLifecycle1796586801832';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
            CREATE TABLE \`account_tokens\` (
                \`token_hash\` binary(32) NOT NULL,
                \`user_id\` int NOT NULL,
                \`purpose\` varchar(20) NOT NULL,
                \`email\` varchar(254) NOT NULL,
                \`created_at\` datetime(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
                \`expires_at\` datetime(3) NOT NULL,
                \`used_at\` datetime(3) NULL,
                INDEX \`account_tokens_user_id_idx\` (\`user_id\`),
                PRIMARY KEY (\`token_hash\`)
            ) ENGINE = InnoDB
        `);
    await queryRunner.query(`
            CREATE TABLE \`mail_outbox\` (
                \`id\` int NOT NULL AUTO_INCREMENT,
                \`recipient\` varchar(254) NOT NULL,
                \`subject\` varchar(255) NOT NULL,
                \`body\` mediumtext NOT NULL,
                \`created_at\` datetime(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
                \`attempts\` int NOT NULL DEFAULT '0',
                \`next_attempt_at\` datetime(3) NOT NULL,
                \`failed_at\` datetime(3) NULL,
                \`last_error\` varchar(500) NULL,
                INDEX \`mail_outbox_next_attempt_at_idx\` (\`next_attempt_at\`),
                PRIMARY KEY (\`id\`)
            ) ENGINE = InnoDB
        `);
    await queryRunner.query(`
            ALTER TABLE \`users\`
            ADD \`email_verified\` tinyint NOT NULL DEFAULT 0
        `);
    await queryRunner.query(`
            ALTER TABLE \`sessions\`
            ADD \`last_used_at\` datetime(3) NULL
        `);
    await queryRunner.query(`
            ALTER TABLE \`sessions\`
            ADD \`user_agent\` varchar(255) NULL
        `);
    await queryRunner.query(`
            ALTER TABLE \`account_tokens\`
            ADD CONSTRAINT \`account_tokens_user_id_fkey\` FOREIGN KEY (\`user_id\`) REFERENCES \`users\`(\`id\`) ON DELETE CASCADE ON UPDATE NO ACTION
        `);
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
            ALTER TABLE \`account_tokens\` DROP FOREIGN KEY \`account_tokens_user_id_fkey\`
        `);
    await queryRunner.query(`
            ALTER TABLE \`sessions\` DROP COLUMN \`user_agent\`
        `);
    await queryRunner.query(`
            ALTER TABLE \`sessions\` DROP COLUMN \`last_used_at\`
        `);
    await queryRunner.query(`
            ALTER TABLE \`users\` DROP COLUMN \`email_verified\`
        `);
    await queryRunner.query(`
            DROP INDEX \`mail_outbox_next_attempt_at_idx\` ON \`mail_outbox\`
        `);
    await queryRunner.query(`
            DROP TABLE \`mail_outbox\`
        `);
    await queryRunner.query(`
            DROP INDEX \`account_tokens_user_id_idx\` ON \`account_tokens\`
        `);
    await queryRunner.query(`
            DROP TABLE \`account_tokens\`
        `);
  }
}
