import type { ConstraintProblems } from '../database/errors/constraint-problems';

/**
 * What the comments table's named constraints mean to a client (registered by CommentsModule).
 * comments_author_id_fkey (the author is in the body) needs no entry: the derived 422 naming
 * `authorId` is what a client needs.
 */
export const commentsConstraints: ConstraintProblems = {
  // The post comes from the path (`/posts/{postId}/comments`): a missing one is 404, not 422.
  comments_post_id_fkey: { field: 'postId', detail: 'The post does not exist', notFound: true },
};
