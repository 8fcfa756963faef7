import { applyDecorators, createParamDecorator, type ExecutionContext, SetMetadata } from '@nestjs/common';
import { ApiBearerAuth } from '@nestjs/swagger';
import { ApiProblems, BEARER_SCHEME } from '../http/openapi';
import type { Caller } from './caller';

/** Who may call a route; routes without a decorator need a signed-in caller (AuthGuard). */
export type Access = 'anyone' | 'anyone-ignoring-credentials';
export const ACCESS = 'auth:access';

/**
 * Open to anonymous callers. A bearer token, when sent, is still checked (401 if invalid) and makes
 * the caller known (e.g. a user sees their own email). `ignoreCredentials`: the route never looks at
 * the Authorization header (login, refresh, health: a stale token must not stand in the way).
 * OpenAPI: no `security`, so Swagger UI shows no padlock (its optional-auth form, `[{}, {bearer}]`,
 * draws a closed padlock on every public operation, as if it were locked).
 */
export function Public({ ignoreCredentials = false } = {}) {
  if (ignoreCredentials) return SetMetadata(ACCESS, 'anyone-ignoring-credentials' satisfies Access);
  return applyDecorators(SetMetadata(ACCESS, 'anyone' satisfies Access), ApiProblems(401));
}

/** Needs a signed-in caller (the default): documents the bearer scheme and the 401/403 answers. */
export function SignedIn() {
  return applyDecorators(ApiBearerAuth(BEARER_SCHEME), ApiProblems(401, 403));
}

/** Metadata key of AllowUnverified. */
export const ALLOW_UNVERIFIED = 'auth:allow-unverified';

/**
 * A write an account with an unverified email may make even with UNVERIFIED_MAY_WRITE=false (see
 * AuthGuard): managing its own account and sessions, so it can fix a mistyped address.
 */
export const AllowUnverified = () => SetMetadata(ALLOW_UNVERIFIED, true);

/** The authenticated caller (set by AuthGuard); undefined on a public route called anonymously. */
export const CurrentUser = createParamDecorator(
  (_data: unknown, context: ExecutionContext): Caller | undefined =>
    context.switchToHttp().getRequest<{ caller?: Caller }>().caller,
);
