import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * posts.body and comments.body from TEXT (65,535 bytes) to MEDIUMTEXT: a post body may be 20,000
 * characters, and 20,000 four-byte characters (emoji) are 80,000 bytes, which MariaDB refused with a
 * 400 PostgreSQL and SQLite never gave. Written by hand: `migration:generate` drops and re-adds the
 * columns (losing every body); MODIFY keeps the rows. The charset and collation stay the table's.
 */
export class WiderTextColumns1796044032867 implements MigrationInterface {
  name = 'WiderTextColumns1796044032867';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query('ALTER TABLE `posts` MODIFY `body` mediumtext NOT NULL');
    await queryRunner.query('ALTER TABLE `comments` MODIFY `body` mediumtext NOT NULL');
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    // Fails (strict mode) if a body no longer fits TEXT, rather than truncating it.
    await queryRunner.query('ALTER TABLE `comments` MODIFY `body` text NOT NULL');
    await queryRunner.query('ALTER TABLE `posts` MODIFY `body` text NOT NULL');
  }
}
