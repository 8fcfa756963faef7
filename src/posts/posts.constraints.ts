import type { ConstraintProblems } from '../database/errors/constraint-problems';

/** What the posts table's named constraints mean to a client (registered by PostsModule). */
export const postsConstraints: ConstraintProblems = {
  // The author comes from the path (`/users/{userId}/posts`): a missing one is 404, not 422.
  posts_author_id_fkey: { field: 'authorId', detail: 'The user does not exist', notFound: true },
};
