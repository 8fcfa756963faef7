import { MigrationInterface, QueryRunner } from 'typeorm';

export class AddRowVersions1795321348026 implements MigrationInterface {
  name = 'AddRowVersions1795321348026';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
            ALTER TABLE "users"
            ADD "version" integer NOT NULL DEFAULT '1'
        `);
    await queryRunner.query(`
            ALTER TABLE "posts"
            ADD "version" integer NOT NULL DEFAULT '1'
        `);
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
            ALTER TABLE "posts" DROP COLUMN "version"
        `);
    await queryRunner.query(`
            ALTER TABLE "users" DROP COLUMN "version"
        `);
  }
}
