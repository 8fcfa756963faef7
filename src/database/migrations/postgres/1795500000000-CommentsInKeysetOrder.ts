import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Keyset pages of a post's comments (ordered by created_at, id) are only sound if comments become
 * visible in that order. With `DEFAULT now()` they did not: now() is the transaction's start, so a
 * comment whose transaction began first but committed last sorted before positions readers had
 * already passed, and was never listed.
 *
 * A BEFORE INSERT trigger makes the order hold for every writer (the API, seeds, plain SQL):
 * 1. it locks the post row (`FOR NO KEY UPDATE`: conflicts only with itself and with UPDATE/DELETE
 *    of the post, never with reads or foreign-key checks), so comment inserts on one post are
 *    serialized and each waits for the previous writer's COMMIT (the lock is held until then);
 * 2. only then it takes the time: `clock_timestamp()` (the real time, not the transaction's start),
 *    at least 1 ms after the post's latest comment, so created_at strictly increases per post in
 *    commit order (the column has millisecond precision; ids never have to break a tie).
 * A missing post locks nothing and the foreign key rejects the row as before.
 */
export class CommentsInKeysetOrder1795500000000 implements MigrationInterface {
  name = 'CommentsInKeysetOrder1795500000000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
            CREATE FUNCTION "comments_in_keyset_order"() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
              PERFORM 1 FROM "posts" WHERE "id" = NEW."post_id" FOR NO KEY UPDATE;
              NEW."created_at" := greatest(
                clock_timestamp(),
                (SELECT max("created_at") + interval '1 millisecond' FROM "comments" WHERE "post_id" = NEW."post_id")
              );
              RETURN NEW;
            END
            $$
        `);
    await queryRunner.query(`
            CREATE TRIGGER "comments_in_keyset_order" BEFORE INSERT ON "comments"
            FOR EACH ROW EXECUTE FUNCTION "comments_in_keyset_order"()
        `);
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TRIGGER "comments_in_keyset_order" ON "comments"`);
    await queryRunner.query(`DROP FUNCTION "comments_in_keyset_order"()`);
  }
}
