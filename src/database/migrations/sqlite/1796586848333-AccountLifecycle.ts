import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The account lifecycle (issue #31) on SQLite, as postgres/…-AccountLifecycle.ts. Written by hand
 * (see SqliteSchema's rules): the new tables are created with their foreign key, and the new columns
 * are added with ALTER TABLE ADD/DROP COLUMN, where the generator would rebuild users and sessions
 * (and a rebuild's DROP TABLE users would cascade into every table that references it).
 */
export class AccountLifecycle1796586848333 implements MigrationInterface {
  name = 'AccountLifecycle1796586848333';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
            CREATE TABLE "account_tokens" (
                "token_hash" blob PRIMARY KEY NOT NULL,
                "user_id" integer NOT NULL,
                "purpose" varchar(20) NOT NULL,
                "email" varchar(254) NOT NULL,
                "created_at" datetime NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f','now')),
                "expires_at" datetime NOT NULL,
                "used_at" datetime,
                CONSTRAINT "account_tokens_user_id_fkey" FOREIGN KEY ("user_id") REFERENCES "users" ("id") ON DELETE CASCADE ON UPDATE NO ACTION
            )
        `);
    await queryRunner.query(`CREATE INDEX "account_tokens_user_id_idx" ON "account_tokens" ("user_id")`);
    await queryRunner.query(`
            CREATE TABLE "mail_outbox" (
                "id" integer PRIMARY KEY AUTOINCREMENT NOT NULL,
                "recipient" varchar(254) NOT NULL,
                "subject" varchar(255) NOT NULL,
                "body" text NOT NULL,
                "created_at" datetime NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f','now')),
                "attempts" integer NOT NULL DEFAULT (0),
                "next_attempt_at" datetime NOT NULL,
                "failed_at" datetime,
                "last_error" varchar(500)
            )
        `);
    await queryRunner.query(`CREATE INDEX "mail_outbox_next_attempt_at_idx" ON "mail_outbox" ("next_attempt_at")`);
    await queryRunner.query(`ALTER TABLE "users" ADD COLUMN "email_verified" boolean NOT NULL DEFAULT (0)`);
    await queryRunner.query(`ALTER TABLE "sessions" ADD COLUMN "last_used_at" datetime`);
    await queryRunner.query(`ALTER TABLE "sessions" ADD COLUMN "user_agent" varchar(255)`);
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE "sessions" DROP COLUMN "user_agent"`);
    await queryRunner.query(`ALTER TABLE "sessions" DROP COLUMN "last_used_at"`);
    await queryRunner.query(`ALTER TABLE "users" DROP COLUMN "email_verified"`);
    await queryRunner.query(`DROP TABLE "mail_outbox"`);
    await queryRunner.query(`DROP TABLE "account_tokens"`);
  }
}
