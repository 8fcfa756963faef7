import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The whole schema on SQLite, as the PostgreSQL migrations leave it (postgres/), written by hand:
 * TypeORM's generator would create each table without its foreign keys and then rebuild it through a
 * temporary copy (CREATE temporary_x, copy, DROP x, rename) to add them. Here every table is created
 * once, keys included, in dependency order, so nothing is ever dropped.
 *
 * Rules for later SQLite migrations (see README, Databases):
 * - A rebuild's `DROP TABLE` deletes the rows first, and with foreign keys on that cascades into the
 *   referencing tables. TypeORM turns foreign keys off before up() (outside the transaction, where the
 *   PRAGMA works) — but migration:revert issues it inside the transaction, where SQLite ignores it:
 *   down() must never rebuild a table that others reference.
 * - Timestamps are UTC text with milliseconds (`strftime('%Y-%m-%d %H:%M:%f','now')`), never
 *   datetime('now') / CURRENT_TIMESTAMP, which drop the milliseconds.
 *
 * Differences from PostgreSQL, each in its place below: the enum is a CHECK, uuid and bytea are
 * varchar(36) and blob, and users_email_lower_key is on a generated column email_lower (as on MySQL)
 * whose lower() is the app's Unicode one (database/dialects/sqlite.ts).
 */
export class SqliteSchema1796028900000 implements MigrationInterface {
  name = 'SqliteSchema1796028900000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
            CREATE TABLE "users" (
                "id" integer PRIMARY KEY AUTOINCREMENT NOT NULL,
                "name" varchar(100) NOT NULL,
                "email" varchar(254) NOT NULL,
                "password_hash" varchar(255),
                "role" varchar CHECK( "role" IN ('user','admin') ) NOT NULL DEFAULT ('user'),
                "created_at" datetime NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f','now')),
                "updated_at" datetime NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f','now')),
                "version" integer NOT NULL DEFAULT (1),
                "email_lower" varchar(254) AS (lower("email")) VIRTUAL
            )
        `);
    await queryRunner.query(`CREATE INDEX "users_name_id_idx" ON "users" ("name", "id")`);
    // Emails unique whatever their case, stored as given, as on PostgreSQL: a unique index on the
    // generated column (computed by the app's Unicode lower(), database/dialects/sqlite.ts), as on MySQL.
    await queryRunner.query(`CREATE UNIQUE INDEX "users_email_lower_key" ON "users" ("email_lower")`);
    // TypeORM reads a generated column's expression from here (the drift check compares it).
    await queryRunner.query(
      `INSERT INTO "typeorm_metadata"("database", "schema", "table", "type", "name", "value") VALUES (NULL, NULL, ?, ?, ?, ?)`,
      ['users', 'GENERATED_COLUMN', 'email_lower', 'lower("email")'],
    );
    await queryRunner.query(`
            CREATE TABLE "profiles" (
                "user_id" integer PRIMARY KEY NOT NULL,
                "bio" varchar(1000) NOT NULL DEFAULT (''),
                "avatar_url" varchar(2048),
                CONSTRAINT "profiles_user_id_fkey" FOREIGN KEY ("user_id") REFERENCES "users" ("id") ON DELETE CASCADE ON UPDATE NO ACTION
            )
        `);
    await queryRunner.query(`
            CREATE TABLE "posts" (
                "id" integer PRIMARY KEY AUTOINCREMENT NOT NULL,
                "author_id" integer NOT NULL,
                "title" varchar(200) NOT NULL,
                "body" text NOT NULL,
                "created_at" datetime NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f','now')),
                "updated_at" datetime NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f','now')),
                "version" integer NOT NULL DEFAULT (1),
                CONSTRAINT "posts_author_id_fkey" FOREIGN KEY ("author_id") REFERENCES "users" ("id") ON DELETE CASCADE ON UPDATE NO ACTION
            )
        `);
    await queryRunner.query(
      `CREATE INDEX "posts_author_id_created_at_id_idx" ON "posts" ("author_id", "created_at", "id")`,
    );
    await queryRunner.query(`
            CREATE TABLE "comments" (
                "id" integer PRIMARY KEY AUTOINCREMENT NOT NULL,
                "post_id" integer NOT NULL,
                "author_id" integer NOT NULL,
                "body" text NOT NULL,
                "created_at" datetime NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f','now')),
                CONSTRAINT "comments_post_id_fkey" FOREIGN KEY ("post_id") REFERENCES "posts" ("id") ON DELETE CASCADE ON UPDATE NO ACTION,
                CONSTRAINT "comments_author_id_fkey" FOREIGN KEY ("author_id") REFERENCES "users" ("id") ON DELETE CASCADE ON UPDATE NO ACTION
            )
        `);
    await queryRunner.query(`CREATE INDEX "comments_author_id_idx" ON "comments" ("author_id")`);
    await queryRunner.query(
      `CREATE INDEX "comments_post_id_created_at_id_idx" ON "comments" ("post_id", "created_at", "id")`,
    );
    // Keyset order (postgres/…-CommentsInKeysetOrder): SQLite has one writer, so comments commit in
    // insertion order and ids rise with it; this keeps created_at rising too, at least 1 ms after the
    // post's latest comment, even when two land in one millisecond or the clock steps back. An AFTER
    // trigger, as SQLite's BEFORE triggers cannot change the new row.
    await queryRunner.query(`
            CREATE TRIGGER "comments_in_keyset_order" AFTER INSERT ON "comments"
            BEGIN
              UPDATE "comments"
              SET "created_at" = strftime('%Y-%m-%d %H:%M:%f', (SELECT max("created_at") FROM "comments" WHERE "post_id" = NEW."post_id" AND "id" <> NEW."id"), '+0.001 seconds')
              WHERE "id" = NEW."id"
                AND "created_at" <= (SELECT max("created_at") FROM "comments" WHERE "post_id" = NEW."post_id" AND "id" <> NEW."id");
            END
        `);
    await queryRunner.query(`
            CREATE TABLE "sessions" (
                "id" varchar(36) PRIMARY KEY NOT NULL,
                "user_id" integer NOT NULL,
                "created_at" datetime NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f','now')),
                "expires_at" datetime NOT NULL,
                "revoked_at" datetime,
                CONSTRAINT "sessions_user_id_fkey" FOREIGN KEY ("user_id") REFERENCES "users" ("id") ON DELETE CASCADE ON UPDATE NO ACTION
            )
        `);
    await queryRunner.query(`CREATE INDEX "sessions_user_id_idx" ON "sessions" ("user_id")`);
    await queryRunner.query(`
            CREATE TABLE "refresh_tokens" (
                "token_hash" blob PRIMARY KEY NOT NULL,
                "session_id" varchar(36) NOT NULL,
                "issued_at" datetime NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f','now')),
                "rotated_at" datetime,
                CONSTRAINT "refresh_tokens_session_id_fkey" FOREIGN KEY ("session_id") REFERENCES "sessions" ("id") ON DELETE CASCADE ON UPDATE NO ACTION
            )
        `);
    await queryRunner.query(`CREATE INDEX "refresh_tokens_session_id_idx" ON "refresh_tokens" ("session_id")`);
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    // Referencing tables first: no DROP ever cascades.
    for (const table of ['refresh_tokens', 'sessions', 'comments', 'posts', 'profiles', 'users']) {
      await queryRunner.query(`DROP TABLE "${table}"`);
    }
    await queryRunner.query(`DELETE FROM "typeorm_metadata" WHERE "type" = ? AND "table" = ? AND "name" = ?`, [
      'GENERATED_COLUMN',
      'users',
      'email_lower',
    ]);
  }
}
