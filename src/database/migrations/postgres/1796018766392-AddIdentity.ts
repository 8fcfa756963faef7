import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Identity (issue #15): users get an argon2id `password_hash` and a `role`; `sessions` and their
 * `refresh_tokens` (SHA-256 only) back login, refresh rotation and logout. Users that existed before
 * get no password (NULL: they cannot log in until an admin sets one) and the role `user`; deleting a
 * user deletes their sessions and tokens (ON DELETE CASCADE), so a deleted user's token stops working.
 */
export class AddIdentity1796018766392 implements MigrationInterface {
  name = 'AddIdentity1796018766392';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
            CREATE TABLE "sessions" (
                "id" uuid NOT NULL,
                "user_id" integer NOT NULL,
                "created_at" TIMESTAMP(3) WITH TIME ZONE NOT NULL DEFAULT now(),
                "expires_at" TIMESTAMP(3) WITH TIME ZONE NOT NULL,
                "revoked_at" TIMESTAMP(3) WITH TIME ZONE,
                CONSTRAINT "PK_3238ef96f18b355b671619111bc" PRIMARY KEY ("id")
            )
        `);
    await queryRunner.query(`
            CREATE INDEX "sessions_user_id_idx" ON "sessions" ("user_id")
        `);
    await queryRunner.query(`
            CREATE TABLE "refresh_tokens" (
                "token_hash" bytea NOT NULL,
                "session_id" uuid NOT NULL,
                "issued_at" TIMESTAMP(3) WITH TIME ZONE NOT NULL DEFAULT now(),
                "rotated_at" TIMESTAMP(3) WITH TIME ZONE,
                CONSTRAINT "PK_a7838d2ba25be1342091b6695f1" PRIMARY KEY ("token_hash")
            )
        `);
    await queryRunner.query(`
            CREATE INDEX "refresh_tokens_session_id_idx" ON "refresh_tokens" ("session_id")
        `);
    await queryRunner.query(`
            ALTER TABLE "users"
            ADD "password_hash" character varying(255)
        `);
    await queryRunner.query(`
            CREATE TYPE "public"."user_role" AS ENUM('user', 'admin')
        `);
    await queryRunner.query(`
            ALTER TABLE "users"
            ADD "role" "public"."user_role" NOT NULL DEFAULT 'user'
        `);
    await queryRunner.query(`
            ALTER TABLE "sessions"
            ADD CONSTRAINT "sessions_user_id_fkey" FOREIGN KEY ("user_id") REFERENCES "users"("id") ON DELETE CASCADE ON UPDATE NO ACTION
        `);
    await queryRunner.query(`
            ALTER TABLE "refresh_tokens"
            ADD CONSTRAINT "refresh_tokens_session_id_fkey" FOREIGN KEY ("session_id") REFERENCES "sessions"("id") ON DELETE CASCADE ON UPDATE NO ACTION
        `);
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
            ALTER TABLE "refresh_tokens" DROP CONSTRAINT "refresh_tokens_session_id_fkey"
        `);
    await queryRunner.query(`
            ALTER TABLE "sessions" DROP CONSTRAINT "sessions_user_id_fkey"
        `);
    await queryRunner.query(`
            ALTER TABLE "users" DROP COLUMN "role"
        `);
    await queryRunner.query(`
            DROP TYPE "public"."user_role"
        `);
    await queryRunner.query(`
            ALTER TABLE "users" DROP COLUMN "password_hash"
        `);
    await queryRunner.query(`
            DROP INDEX "public"."refresh_tokens_session_id_idx"
        `);
    await queryRunner.query(`
            DROP TABLE "refresh_tokens"
        `);
    await queryRunner.query(`
            DROP INDEX "public"."sessions_user_id_idx"
        `);
    await queryRunner.query(`
            DROP TABLE "sessions"
        `);
  }
}
