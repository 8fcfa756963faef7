import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The schema on MariaDB ≥ 10.6 / MySQL 8, generated from the entities (their PostgreSQL column types
 * mapped by database/dialects/dialect.ts), plus what TypeORM cannot generate, as on PostgreSQL:
 * - utf8mb4 tables with one pinned collation, whatever the server's default;
 * - users_email_lower_key: emails unique whatever their case, as a unique index on the stored
 *   generated column email_lower (binary collation: no further case or accent folding);
 * - the comments_in_keyset_order trigger, the twin of PostgreSQL's (CommentsInKeysetOrder): it locks
 *   the post row, then takes the real time (SYSDATE, not the statement's start), at least 1 ms after
 *   the post's latest comment, so a post's comments become visible in (created_at, id) order.
 */

export class InitialSchema1796028872938 implements MigrationInterface {
  name = 'InitialSchema1796028872938';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
            CREATE TABLE \`posts\` (
                \`id\` int NOT NULL AUTO_INCREMENT,
                \`author_id\` int NOT NULL,
                \`title\` varchar(200) NOT NULL,
                \`body\` text NOT NULL,
                \`created_at\` datetime(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
                \`updated_at\` datetime(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
                \`version\` int NOT NULL DEFAULT '1',
                INDEX \`posts_author_id_created_at_id_idx\` (\`author_id\`, \`created_at\`, \`id\`),
                PRIMARY KEY (\`id\`)
            ) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci
        `);
    await queryRunner.query(`
            CREATE TABLE \`comments\` (
                \`id\` int NOT NULL AUTO_INCREMENT,
                \`post_id\` int NOT NULL,
                \`author_id\` int NOT NULL,
                \`body\` text NOT NULL,
                \`created_at\` datetime(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
                INDEX \`comments_author_id_idx\` (\`author_id\`),
                INDEX \`comments_post_id_created_at_id_idx\` (\`post_id\`, \`created_at\`, \`id\`),
                PRIMARY KEY (\`id\`)
            ) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci
        `);
    await queryRunner.query(`
            CREATE TABLE \`profiles\` (
                \`user_id\` int NOT NULL,
                \`bio\` varchar(1000) NOT NULL DEFAULT '',
                \`avatar_url\` varchar(2048) NULL,
                PRIMARY KEY (\`user_id\`)
            ) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci
        `);
    await queryRunner.query(`
            CREATE TABLE \`users\` (
                \`id\` int NOT NULL AUTO_INCREMENT,
                \`name\` varchar(100) NOT NULL,
                \`email\` varchar(254) NOT NULL,
                \`password_hash\` varchar(255) NULL,
                \`role\` enum ('user', 'admin') NOT NULL DEFAULT 'user',
                \`created_at\` datetime(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
                \`updated_at\` datetime(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
                \`version\` int NOT NULL DEFAULT '1',
                \`email_lower\` varchar(254) CHARACTER SET "utf8mb4" COLLATE "utf8mb4_bin" AS (lower(\`email\`)) STORED,
                INDEX \`users_name_id_idx\` (\`name\`, \`id\`),
                PRIMARY KEY (\`id\`)
            ) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci
        `);
    await queryRunner.query(
      `
            INSERT INTO \`typeorm_metadata\`(
                    \`database\`,
                    \`schema\`,
                    \`table\`,
                    \`type\`,
                    \`name\`,
                    \`value\`
                )
            VALUES (DEFAULT, ?, ?, ?, ?, ?)
        `,
      [await queryRunner.getCurrentDatabase(), 'users', 'GENERATED_COLUMN', 'email_lower', 'lower(`email`)'],
    );
    await queryRunner.query(`
            CREATE UNIQUE INDEX \`users_email_lower_key\` ON \`users\` (\`email_lower\`)
        `);
    await queryRunner.query(`
            CREATE TABLE \`sessions\` (
                \`id\` char(36) NOT NULL,
                \`user_id\` int NOT NULL,
                \`created_at\` datetime(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
                \`expires_at\` datetime(3) NOT NULL,
                \`revoked_at\` datetime(3) NULL,
                INDEX \`sessions_user_id_idx\` (\`user_id\`),
                PRIMARY KEY (\`id\`)
            ) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci
        `);
    await queryRunner.query(`
            CREATE TABLE \`refresh_tokens\` (
                \`token_hash\` binary(32) NOT NULL,
                \`session_id\` char(36) NOT NULL,
                \`issued_at\` datetime(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
                \`rotated_at\` datetime(3) NULL,
                INDEX \`refresh_tokens_session_id_idx\` (\`session_id\`),
                PRIMARY KEY (\`token_hash\`)
            ) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci
        `);
    await queryRunner.query(`
            ALTER TABLE \`posts\`
            ADD CONSTRAINT \`posts_author_id_fkey\` FOREIGN KEY (\`author_id\`) REFERENCES \`users\`(\`id\`) ON DELETE CASCADE ON UPDATE NO ACTION
        `);
    await queryRunner.query(`
            ALTER TABLE \`comments\`
            ADD CONSTRAINT \`comments_post_id_fkey\` FOREIGN KEY (\`post_id\`) REFERENCES \`posts\`(\`id\`) ON DELETE CASCADE ON UPDATE NO ACTION
        `);
    await queryRunner.query(`
            ALTER TABLE \`comments\`
            ADD CONSTRAINT \`comments_author_id_fkey\` FOREIGN KEY (\`author_id\`) REFERENCES \`users\`(\`id\`) ON DELETE CASCADE ON UPDATE NO ACTION
        `);
    await queryRunner.query(`
            ALTER TABLE \`profiles\`
            ADD CONSTRAINT \`profiles_user_id_fkey\` FOREIGN KEY (\`user_id\`) REFERENCES \`users\`(\`id\`) ON DELETE CASCADE ON UPDATE NO ACTION
        `);
    await queryRunner.query(`
            ALTER TABLE \`sessions\`
            ADD CONSTRAINT \`sessions_user_id_fkey\` FOREIGN KEY (\`user_id\`) REFERENCES \`users\`(\`id\`) ON DELETE CASCADE ON UPDATE NO ACTION
        `);
    await queryRunner.query(`
            ALTER TABLE \`refresh_tokens\`
            ADD CONSTRAINT \`refresh_tokens_session_id_fkey\` FOREIGN KEY (\`session_id\`) REFERENCES \`sessions\`(\`id\`) ON DELETE CASCADE ON UPDATE NO ACTION
        `);
    // SYSDATE(3) is in the session's time zone: converted, so a writer on another zone still stores UTC.
    await queryRunner.query(`
            CREATE TRIGGER \`comments_in_keyset_order\` BEFORE INSERT ON \`comments\` FOR EACH ROW
            BEGIN
              DECLARE locked INT;
              DECLARE CONTINUE HANDLER FOR NOT FOUND SET locked = NULL;
              SELECT \`id\` INTO locked FROM \`posts\` WHERE \`id\` = NEW.\`post_id\` FOR UPDATE;
              SET NEW.\`created_at\` = GREATEST(
                CONVERT_TZ(SYSDATE(3), @@session.time_zone, '+00:00'),
                COALESCE(
                  (SELECT MAX(\`created_at\`) + INTERVAL 1000 MICROSECOND FROM \`comments\` WHERE \`post_id\` = NEW.\`post_id\`),
                  '1000-01-01'
                )
              );
            END
        `);
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TRIGGER \`comments_in_keyset_order\``);
    await queryRunner.query(`
            ALTER TABLE \`refresh_tokens\` DROP FOREIGN KEY \`refresh_tokens_session_id_fkey\`
        `);
    await queryRunner.query(`
            ALTER TABLE \`sessions\` DROP FOREIGN KEY \`sessions_user_id_fkey\`
        `);
    await queryRunner.query(`
            ALTER TABLE \`profiles\` DROP FOREIGN KEY \`profiles_user_id_fkey\`
        `);
    await queryRunner.query(`
            ALTER TABLE \`comments\` DROP FOREIGN KEY \`comments_author_id_fkey\`
        `);
    await queryRunner.query(`
            ALTER TABLE \`comments\` DROP FOREIGN KEY \`comments_post_id_fkey\`
        `);
    await queryRunner.query(`
            ALTER TABLE \`posts\` DROP FOREIGN KEY \`posts_author_id_fkey\`
        `);
    await queryRunner.query(`
            DROP INDEX \`refresh_tokens_session_id_idx\` ON \`refresh_tokens\`
        `);
    await queryRunner.query(`
            DROP TABLE \`refresh_tokens\`
        `);
    await queryRunner.query(`
            DROP INDEX \`sessions_user_id_idx\` ON \`sessions\`
        `);
    await queryRunner.query(`
            DROP TABLE \`sessions\`
        `);
    await queryRunner.query(
      `
            DELETE FROM \`typeorm_metadata\`
            WHERE \`type\` = ?
                AND \`name\` = ?
                AND \`schema\` = ?
                AND \`table\` = ?
        `,
      ['GENERATED_COLUMN', 'email_lower', await queryRunner.getCurrentDatabase(), 'users'],
    );
    await queryRunner.query(`
            DROP INDEX \`users_email_lower_key\` ON \`users\`
        `);
    await queryRunner.query(`
            DROP INDEX \`users_name_id_idx\` ON \`users\`
        `);
    await queryRunner.query(`
            DROP TABLE \`users\`
        `);
    await queryRunner.query(`
            DROP TABLE \`profiles\`
        `);
    await queryRunner.query(`
            DROP INDEX \`comments_post_id_created_at_id_idx\` ON \`comments\`
        `);
    await queryRunner.query(`
            DROP INDEX \`comments_author_id_idx\` ON \`comments\`
        `);
    await queryRunner.query(`
            DROP TABLE \`comments\`
        `);
    await queryRunner.query(`
            DROP INDEX \`posts_author_id_created_at_id_idx\` ON \`posts\`
        `);
    await queryRunner.query(`
            DROP TABLE \`posts\`
        `);
  }
}
