import { type CanActivate, type ExecutionContext, Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { FastifyRequest } from 'fastify';
import { type Access, ACCESS } from './auth.decorators';
import { AuthService } from './auth.service';
import type { Caller } from './caller';
import { authenticationRequired, invalidToken } from './problems';

/** RFC 6750 §2.1: `Bearer` (any case), a space, a b64token; what follows the scheme is checked below. */
const BEARER = /^Bearer(?: +(.*))?$/i;
const B64TOKEN = /^[\w.~+/-]+=*$/;

/**
 * The global guard: every route needs a valid bearer access token unless marked @Public(). A token
 * that is sent is always checked, also on public routes; the result is `request.caller`.
 */
@Injectable()
export class AuthGuard implements CanActivate {
  constructor(
    private readonly reflector: Reflector,
    private readonly auth: AuthService,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const access = this.reflector.getAllAndOverride<Access | undefined>(ACCESS, [
      context.getHandler(),
      context.getClass(),
    ]);
    if (access === 'anyone-ignoring-credentials') return true;
    const request = context.switchToHttp().getRequest<FastifyRequest & { caller?: Caller }>();
    const token = bearerToken(request.headers.authorization);
    if (token === undefined) {
      if (access === 'anyone') return true;
      throw authenticationRequired();
    }
    request.caller = await this.auth.authenticate(token);
    return true;
  }
}

/** The token of a Bearer Authorization header; undefined when there is none (or another scheme). */
function bearerToken(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const match = BEARER.exec(header.trim());
  if (!match) return undefined;
  if (!B64TOKEN.test(match[1] ?? '')) throw invalidToken('The access token is malformed');
  return match[1];
}
