import type { ConstraintProblems } from '../database/errors/constraint-problems';

/**
 * What the users and profiles tables' named constraints mean to a client (registered by UsersModule).
 * profiles_user_id_fkey needs no entry: foreign keys get a 422 derived from the entity metadata.
 */
export const usersConstraints: ConstraintProblems = {
  // UNIQUE INDEX on lower(email), in the migration (TypeORM cannot express it on the entity).
  users_email_lower_key: { field: 'email', detail: 'A user with this email already exists' },
};
