import { ConflictException, Injectable } from '@nestjs/common';
import { TransactionHost } from '@nestjs-cls/transactional';
import type { TransactionalAdapterTypeOrm } from '@nestjs-cls/transactional-adapter-typeorm';

/** The SQL identity needs on `users`: credentials by email, and the admins' lock. */
@Injectable()
export class AccountsRepository {
  constructor(private readonly txHost: TransactionHost<TransactionalAdapterTypeOrm>) {}

  /** The account a login names, found by the case-insensitive unique index on lower(email). */
  async findByEmail(email: string): Promise<{ id: number; passwordHash: string | null } | undefined> {
    const rows = await this.txHost.tx.query<{ id: number; passwordHash: string | null }[]>(
      'SELECT id, password_hash AS "passwordHash" FROM users WHERE lower(email) = lower($1)',
      [email],
    );
    return rows[0];
  }

  async findPasswordHash(userId: number): Promise<string | null | undefined> {
    const rows = await this.txHost.tx.query<{ passwordHash: string | null }[]>(
      'SELECT password_hash AS "passwordHash" FROM users WHERE id = $1',
      [userId],
    );
    return rows[0]?.passwordHash;
  }

  /**
   * Refuses (409) to leave the service without an admin: called inside the transaction that demotes
   * or deletes `userId`. When that user is an admin, it locks every admin row (in id order) first, so
   * two admins demoting themselves at once queue, and the second sees it would be the last; for
   * anyone else it locks nothing, so ordinary deletes never wait on each other here.
   */
  async assertAnotherAdminRemains(userId: number): Promise<void> {
    const admins = await this.txHost.tx.query<{ id: number }[]>(
      "SELECT id FROM users WHERE role = 'admin' AND EXISTS (SELECT 1 FROM users WHERE id = $1 AND role = 'admin') ORDER BY id FOR UPDATE",
      [userId],
    );
    if (admins.length === 1 && admins[0].id === userId) {
      throw new ConflictException('The last admin cannot stop being one: make another user an admin first');
    }
  }
}
