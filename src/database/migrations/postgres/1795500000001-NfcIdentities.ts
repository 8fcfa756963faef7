import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Names, emails and titles are stored in Unicode NFC (the API normalizes them on input, see
 * NormalizeNfc): rows stored before are normalized too, so the unique index on lower(email) compares
 * like with like. It fails if two stored emails differ only in normalization: resolve those first.
 */
export class NfcIdentities1795500000001 implements MigrationInterface {
  name = 'NfcIdentities1795500000001';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
            UPDATE "users" SET "name" = normalize("name", NFC), "email" = normalize("email", NFC)
            WHERE "name" IS NOT NFC NORMALIZED OR "email" IS NOT NFC NORMALIZED
        `);
    await queryRunner.query(`
            UPDATE "posts" SET "title" = normalize("title", NFC) WHERE "title" IS NOT NFC NORMALIZED
        `);
  }

  public async down(): Promise<void> {
    // Normalization cannot be undone, and need not be: NFC text is what the API stores.
  }
}
