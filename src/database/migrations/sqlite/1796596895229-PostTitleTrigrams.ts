import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * `q` (a case-insensitive substring of a post's title) served by an index on SQLite, as pg_trgm's GIN
 * serves it on PostgreSQL: posts_title_fts, an FTS5 table with the `trigram` tokenizer (SQLite ≥ 3.34;
 * better-sqlite3 bundles its own, newer SQLite) over posts.title, an external-content table (it stores
 * only the index; the titles stay in posts), kept in step with posts by three triggers. The query uses
 * it for candidates and checks each with the exact LIKE (docs/scale.md, ADR 0017). The build reads
 * every post once, in this migration's transaction.
 */
export class PostTitleTrigrams1796596895229 implements MigrationInterface {
  name = 'PostTitleTrigrams1796596895229';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      `CREATE VIRTUAL TABLE "posts_title_fts" USING fts5(title, content='posts', content_rowid='id', tokenize='trigram')`,
    );
    await queryRunner.query(`INSERT INTO "posts_title_fts"("posts_title_fts") VALUES ('rebuild')`);
    await queryRunner.query(
      `CREATE TRIGGER "posts_title_fts_insert" AFTER INSERT ON "posts" BEGIN ` +
        `INSERT INTO "posts_title_fts"(rowid, title) VALUES (new.id, new.title); END`,
    );
    await queryRunner.query(
      `CREATE TRIGGER "posts_title_fts_delete" AFTER DELETE ON "posts" BEGIN ` +
        `INSERT INTO "posts_title_fts"("posts_title_fts", rowid, title) VALUES ('delete', old.id, old.title); END`,
    );
    await queryRunner.query(
      `CREATE TRIGGER "posts_title_fts_update" AFTER UPDATE OF title ON "posts" BEGIN ` +
        `INSERT INTO "posts_title_fts"("posts_title_fts", rowid, title) VALUES ('delete', old.id, old.title); ` +
        `INSERT INTO "posts_title_fts"(rowid, title) VALUES (new.id, new.title); END`,
    );
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TRIGGER "posts_title_fts_update"`);
    await queryRunner.query(`DROP TRIGGER "posts_title_fts_delete"`);
    await queryRunner.query(`DROP TRIGGER "posts_title_fts_insert"`);
    await queryRunner.query(`DROP TABLE "posts_title_fts"`);
  }
}
