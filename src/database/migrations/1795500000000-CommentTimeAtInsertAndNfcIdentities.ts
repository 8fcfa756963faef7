import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * 1. Comments are timestamped when inserted (after the post lock), not when their transaction began:
 *    keyset pages rely on it (see CommentsService.createMany).
 * 2. Names, emails and titles are stored in Unicode NFC (the API normalizes them on input); existing
 *    rows are normalized so the unique index on lower(email) compares like with like. It fails if two
 *    existing emails differ only in normalization: resolve those by hand first.
 */
export class CommentTimeAtInsertAndNfcIdentities1795500000000 implements MigrationInterface {
  name = 'CommentTimeAtInsertAndNfcIdentities1795500000000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
            ALTER TABLE "comments"
            ALTER COLUMN "created_at" SET DEFAULT clock_timestamp()
        `);
    await queryRunner.query(`
            UPDATE "users" SET "name" = normalize("name", NFC), "email" = normalize("email", NFC)
            WHERE "name" IS NOT NFC NORMALIZED OR "email" IS NOT NFC NORMALIZED
        `);
    await queryRunner.query(`
            UPDATE "posts" SET "title" = normalize("title", NFC) WHERE "title" IS NOT NFC NORMALIZED
        `);
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
            ALTER TABLE "comments"
            ALTER COLUMN "created_at" SET DEFAULT now()
        `);
  }
}
