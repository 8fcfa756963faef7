import { Injectable, NotFoundException } from '@nestjs/common';
import { validationProblem } from '../http/problem';
import { AccountsRepository } from './accounts.repository';
import { type Caller, isAdmin } from './caller';
import { OwnershipRepository } from './ownership.repository';
import { forbidden } from './problems';

/**
 * Who may write what (the ownership table in the README). Each check answers 404 when the resource
 * does not exist — for everyone, so a 403 never confirms what a 404 would hide from nobody — and 403
 * when it exists but is not the caller's. Admins pass without a lookup: the write itself answers 404.
 */
@Injectable()
export class AccessPolicy {
  constructor(
    private readonly owners: OwnershipRepository,
    private readonly accounts: AccountsRepository,
  ) {}

  /** `PATCH`/`DELETE /users/{id}`, `POST /users/{id}/posts`: the user themself, or an admin. */
  async assertMayActAs(caller: Caller, userId: number): Promise<void> {
    if (isAdmin(caller) || caller.id === userId) return;
    if (!(await this.accounts.exists(userId))) throw new NotFoundException(`User ${userId} not found`);
    throw forbidden(`Only user ${userId} or an admin may do this`);
  }

  /** `PATCH`/`DELETE /posts/{id}`: the post's author, or an admin. */
  async assertMayEditPost(caller: Caller, postId: number): Promise<void> {
    if (isAdmin(caller)) return;
    const authorId = await this.owners.postAuthor(postId);
    if (authorId === undefined) throw new NotFoundException(`Post ${postId} not found`);
    if (authorId !== caller.id) throw forbidden(`Only the author of post ${postId} or an admin may change it`);
  }

  /** `DELETE /comments/{id}`: the comment's author, the post's author, or an admin. */
  async assertMayDeleteComment(caller: Caller, commentId: number): Promise<void> {
    if (isAdmin(caller)) return;
    const authors = await this.owners.commentAuthors(commentId);
    if (!authors) throw new NotFoundException(`Comment ${commentId} not found`);
    if (authors.authorId !== caller.id && authors.postAuthorId !== caller.id) {
      throw forbidden(`Only the comment's author, the post's author or an admin may delete comment ${commentId}`);
    }
  }

  /**
   * New comments are written by the caller: returns them with `authorId` set to the caller, refusing
   * (400 naming the field, e.g. `comments.0.authorId`) an `authorId` sent by anyone but an admin.
   */
  assignCommentAuthors<T extends { authorId?: number }>(
    caller: Caller,
    comments: T[],
    field: (index: number) => string,
  ): (T & { authorId: number })[] {
    const refused = comments.flatMap((comment, index) =>
      comment.authorId === undefined || isAdmin(caller)
        ? []
        : [{ field: field(index), messages: ['authorId is the caller; only admins may set it'] }],
    );
    if (refused.length > 0) throw validationProblem(refused);
    return comments.map((comment) => ({ ...comment, authorId: comment.authorId ?? caller.id }));
  }
}

/** Private fields (`email`, `role`) are shown only to the user themself and to admins. */
export function mayReadPrivateFields(caller: Caller | undefined, userId: number): boolean {
  return isAdmin(caller) || caller?.id === userId;
}
