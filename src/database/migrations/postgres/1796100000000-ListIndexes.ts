import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * An index for every post list's order and filters, so each page is a range scan whatever the
 * table's size (docs/scale.md has the plans at 1M users / 3M posts):
 * - posts_created_at_id_idx: GET /posts?sort=±createdAt (the default), no author filter;
 * - posts_title_id_idx: sort=±title; posts_author_id_title_id_idx: the same with authorId
 *   (±createdAt with authorId already has posts_author_id_created_at_id_idx);
 * - posts_title_trgm_idx: `q` (ILIKE '%…%') through pg_trgm's GIN operator class, for a q of three
 *   characters or more (the API's minimum). pg_trgm is a trusted extension (PostgreSQL ≥ 13): the
 *   database owner may create it; it ships with the embedded PostgreSQL and Debian's server.
 * Plain CREATE INDEX (in the migration's transaction): on a large live table it blocks post writes
 * while it builds (docs/scale.md: how long on 3M posts). There, build them first by hand with
 * CREATE INDEX CONCURRENTLY under these names: IF NOT EXISTS then keeps them.
 */
export class ListIndexes1796100000000 implements MigrationInterface {
  name = 'ListIndexes1796100000000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    // Building them on 3M posts takes longer than the app's DB_STATEMENT_TIMEOUT_MS (the GIN ~15 s here).
    await queryRunner.query(`SET LOCAL statement_timeout = 0`);
    await queryRunner.query(`CREATE EXTENSION IF NOT EXISTS pg_trgm`);
    await queryRunner.query(`CREATE INDEX IF NOT EXISTS "posts_created_at_id_idx" ON "posts" ("created_at", "id")`);
    await queryRunner.query(`CREATE INDEX IF NOT EXISTS "posts_title_id_idx" ON "posts" ("title", "id")`);
    await queryRunner.query(
      `CREATE INDEX IF NOT EXISTS "posts_author_id_title_id_idx" ON "posts" ("author_id", "title", "id")`,
    );
    await queryRunner.query(
      `CREATE INDEX IF NOT EXISTS "posts_title_trgm_idx" ON "posts" USING gin ("title" gin_trgm_ops)`,
    );
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP INDEX "posts_title_trgm_idx"`);
    await queryRunner.query(`DROP INDEX "posts_author_id_title_id_idx"`);
    await queryRunner.query(`DROP INDEX "posts_title_id_idx"`);
    await queryRunner.query(`DROP INDEX "posts_created_at_id_idx"`);
    // The extension stays: other objects may use it, and it costs nothing unused.
  }
}
