import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * An index for every post list's order and filters, as on PostgreSQL (postgres/…-ListIndexes):
 * posts_created_at_id_idx (sort=±createdAt), posts_title_id_idx (sort=±title) and
 * posts_author_id_title_id_idx (sort=±title with authorId). No index serves `q` here: InnoDB's
 * FULLTEXT indexes words, not substrings, and MariaDB has no n-gram parser (docs/scale.md), so a
 * title search reads the posts in the page's order until it has a page (all of them when nothing
 * matches).
 */
export class ListIndexes1796100000000 implements MigrationInterface {
  name = 'ListIndexes1796100000000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query('CREATE INDEX `posts_created_at_id_idx` ON `posts` (`created_at`, `id`)');
    await queryRunner.query('CREATE INDEX `posts_title_id_idx` ON `posts` (`title`, `id`)');
    await queryRunner.query('CREATE INDEX `posts_author_id_title_id_idx` ON `posts` (`author_id`, `title`, `id`)');
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query('DROP INDEX `posts_author_id_title_id_idx` ON `posts`');
    await queryRunner.query('DROP INDEX `posts_title_id_idx` ON `posts`');
    await queryRunner.query('DROP INDEX `posts_created_at_id_idx` ON `posts`');
  }
}
