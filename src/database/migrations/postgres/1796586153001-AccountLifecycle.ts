import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The account lifecycle (issue #31): `account_tokens` (mailed single-use tokens for email
 * verification and password reset, SHA-256 only, bound to the address they went to), the
 * `mail_outbox` the mail worker delivers, `users.email_verified` (false for existing users: nothing
 * proved their addresses), and `sessions.last_used_at` / `user_agent` for GET /auth/sessions (null
 * for existing sessions: "last used" shows their creation time until they are used).
 */
export class AccountLifecycle1796586153001 implements MigrationInterface {
  name = 'AccountLifecycle1796586153001';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
            CREATE TABLE "account_tokens" (
                "token_hash" bytea NOT NULL,
                "user_id" integer NOT NULL,
                "purpose" character varying(20) NOT NULL,
                "email" character varying(254) NOT NULL,
                "created_at" TIMESTAMP(3) WITH TIME ZONE NOT NULL DEFAULT now(),
                "expires_at" TIMESTAMP(3) WITH TIME ZONE NOT NULL,
                "used_at" TIMESTAMP(3) WITH TIME ZONE,
                CONSTRAINT "PK_167033390a71c52224c7c636c8b" PRIMARY KEY ("token_hash")
            )
        `);
    await queryRunner.query(`
            CREATE INDEX "account_tokens_user_id_idx" ON "account_tokens" ("user_id")
        `);
    await queryRunner.query(`
            CREATE TABLE "mail_outbox" (
                "id" integer GENERATED ALWAYS AS IDENTITY NOT NULL,
                "recipient" character varying(254) NOT NULL,
                "subject" character varying(255) NOT NULL,
                "body" text NOT NULL,
                "created_at" TIMESTAMP(3) WITH TIME ZONE NOT NULL DEFAULT now(),
                "attempts" integer NOT NULL DEFAULT '0',
                "next_attempt_at" TIMESTAMP(3) WITH TIME ZONE NOT NULL,
                "failed_at" TIMESTAMP(3) WITH TIME ZONE,
                "last_error" character varying(500),
                CONSTRAINT "PK_fecc63c96385bc35a39ccf2a72e" PRIMARY KEY ("id")
            )
        `);
    await queryRunner.query(`
            CREATE INDEX "mail_outbox_next_attempt_at_idx" ON "mail_outbox" ("next_attempt_at")
        `);
    await queryRunner.query(`
            ALTER TABLE "users"
            ADD "email_verified" boolean NOT NULL DEFAULT false
        `);
    await queryRunner.query(`
            ALTER TABLE "sessions"
            ADD "last_used_at" TIMESTAMP(3) WITH TIME ZONE
        `);
    await queryRunner.query(`
            ALTER TABLE "sessions"
            ADD "user_agent" character varying(255)
        `);
    await queryRunner.query(`
            ALTER TABLE "account_tokens"
            ADD CONSTRAINT "account_tokens_user_id_fkey" FOREIGN KEY ("user_id") REFERENCES "users"("id") ON DELETE CASCADE ON UPDATE NO ACTION
        `);
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
            ALTER TABLE "account_tokens" DROP CONSTRAINT "account_tokens_user_id_fkey"
        `);
    await queryRunner.query(`
            ALTER TABLE "sessions" DROP COLUMN "user_agent"
        `);
    await queryRunner.query(`
            ALTER TABLE "sessions" DROP COLUMN "last_used_at"
        `);
    await queryRunner.query(`
            ALTER TABLE "users" DROP COLUMN "email_verified"
        `);
    await queryRunner.query(`
            DROP INDEX "public"."mail_outbox_next_attempt_at_idx"
        `);
    await queryRunner.query(`
            DROP TABLE "mail_outbox"
        `);
    await queryRunner.query(`
            DROP INDEX "public"."account_tokens_user_id_idx"
        `);
    await queryRunner.query(`
            DROP TABLE "account_tokens"
        `);
  }
}
