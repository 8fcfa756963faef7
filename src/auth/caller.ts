import type { Role } from '../users/entities/user.entity';

/** Who sent an authenticated request: checked against the live session on every request (AuthGuard). */
export interface Caller {
  /** The user's id (the access token's `sub`). */
  id: number;
  /** The role as stored now, not as it was when the token was issued. */
  role: Role;
  /** The session the access token belongs to (its `sid`): logout revokes this one. */
  sessionId: string;
}

export const isAdmin = (caller: Caller | undefined): boolean => caller?.role === 'admin';
