import { MigrationInterface, QueryRunner } from 'typeorm';

export class InitialSchema1795321080503 implements MigrationInterface {
  name = 'InitialSchema1795321080503';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
            CREATE TABLE "profiles" (
                "user_id" integer NOT NULL,
                "bio" character varying(1000) NOT NULL DEFAULT '',
                "avatar_url" character varying(2048),
                CONSTRAINT "PK_9e432b7df0d182f8d292902d1a2" PRIMARY KEY ("user_id")
            )
        `);
    await queryRunner.query(`
            CREATE TABLE "users" (
                "id" integer GENERATED ALWAYS AS IDENTITY NOT NULL,
                "name" character varying(100) NOT NULL,
                "email" character varying(254) NOT NULL,
                "created_at" TIMESTAMP(3) WITH TIME ZONE NOT NULL DEFAULT now(),
                "updated_at" TIMESTAMP(3) WITH TIME ZONE NOT NULL DEFAULT now(),
                CONSTRAINT "PK_a3ffb1c0c8416b9fc6f907b7433" PRIMARY KEY ("id")
            )
        `);
    await queryRunner.query(`
            CREATE INDEX "users_name_id_idx" ON "users" ("name", "id")
        `);
    // Emails are unique whatever their case, and stored as given: an expression index, which
    // TypeORM cannot generate (the entity marks it synchronize: false).
    await queryRunner.query(`
            CREATE UNIQUE INDEX "users_email_lower_key" ON "users" (lower("email"))
        `);
    await queryRunner.query(`
            CREATE TABLE "posts" (
                "id" integer GENERATED ALWAYS AS IDENTITY NOT NULL,
                "author_id" integer NOT NULL,
                "title" character varying(200) NOT NULL,
                "body" text NOT NULL,
                "created_at" TIMESTAMP(3) WITH TIME ZONE NOT NULL DEFAULT now(),
                "updated_at" TIMESTAMP(3) WITH TIME ZONE NOT NULL DEFAULT now(),
                CONSTRAINT "PK_2829ac61eff60fcec60d7274b9e" PRIMARY KEY ("id")
            )
        `);
    await queryRunner.query(`
            CREATE INDEX "posts_author_id_created_at_id_idx" ON "posts" ("author_id", "created_at", "id")
        `);
    await queryRunner.query(`
            CREATE TABLE "comments" (
                "id" integer GENERATED ALWAYS AS IDENTITY NOT NULL,
                "post_id" integer NOT NULL,
                "author_id" integer NOT NULL,
                "body" text NOT NULL,
                "created_at" TIMESTAMP(3) WITH TIME ZONE NOT NULL DEFAULT now(),
                CONSTRAINT "PK_8bf68bc960f2b69e818bdb90dcb" PRIMARY KEY ("id")
            )
        `);
    await queryRunner.query(`
            CREATE INDEX "comments_author_id_idx" ON "comments" ("author_id")
        `);
    await queryRunner.query(`
            CREATE INDEX "comments_post_id_created_at_id_idx" ON "comments" ("post_id", "created_at", "id")
        `);
    await queryRunner.query(`
            ALTER TABLE "profiles"
            ADD CONSTRAINT "profiles_user_id_fkey" FOREIGN KEY ("user_id") REFERENCES "users"("id") ON DELETE CASCADE ON UPDATE NO ACTION
        `);
    await queryRunner.query(`
            ALTER TABLE "posts"
            ADD CONSTRAINT "posts_author_id_fkey" FOREIGN KEY ("author_id") REFERENCES "users"("id") ON DELETE CASCADE ON UPDATE NO ACTION
        `);
    await queryRunner.query(`
            ALTER TABLE "comments"
            ADD CONSTRAINT "comments_post_id_fkey" FOREIGN KEY ("post_id") REFERENCES "posts"("id") ON DELETE CASCADE ON UPDATE NO ACTION
        `);
    await queryRunner.query(`
            ALTER TABLE "comments"
            ADD CONSTRAINT "comments_author_id_fkey" FOREIGN KEY ("author_id") REFERENCES "users"("id") ON DELETE CASCADE ON UPDATE NO ACTION
        `);
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
            ALTER TABLE "comments" DROP CONSTRAINT "comments_author_id_fkey"
        `);
    await queryRunner.query(`
            ALTER TABLE "comments" DROP CONSTRAINT "comments_post_id_fkey"
        `);
    await queryRunner.query(`
            ALTER TABLE "posts" DROP CONSTRAINT "posts_author_id_fkey"
        `);
    await queryRunner.query(`
            ALTER TABLE "profiles" DROP CONSTRAINT "profiles_user_id_fkey"
        `);
    await queryRunner.query(`
            DROP INDEX "public"."comments_post_id_created_at_id_idx"
        `);
    await queryRunner.query(`
            DROP INDEX "public"."comments_author_id_idx"
        `);
    await queryRunner.query(`
            DROP TABLE "comments"
        `);
    await queryRunner.query(`
            DROP INDEX "public"."posts_author_id_created_at_id_idx"
        `);
    await queryRunner.query(`
            DROP TABLE "posts"
        `);
    await queryRunner.query(`
            DROP INDEX "public"."users_email_lower_key"
        `);
    await queryRunner.query(`
            DROP INDEX "public"."users_name_id_idx"
        `);
    await queryRunner.query(`
            DROP TABLE "users"
        `);
    await queryRunner.query(`
            DROP TABLE "profiles"
        `);
  }
}
