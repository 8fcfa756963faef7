import { type CanActivate, type ExecutionContext, Inject, Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { FastifyRequest } from 'fastify';
import { APP_CONFIG, type AppConfig } from '../config/app.config';
import { type Access, ACCESS, ALLOW_UNVERIFIED } from './auth.decorators';
import { AuthService } from './auth.service';
import type { Caller } from './caller';
import { EmailVerification } from './email-verification';
import { authenticationRequired, invalidToken } from './problems';

/** RFC 6750 §2.1: `Bearer` (any case), a space, a b64token; what follows the scheme is checked below. */
const BEARER = /^Bearer(?: +(.*))?$/i;
const B64TOKEN = /^[\w.~+/-]+=*$/;
/** Methods that only read (RFC 9110 §9.2.1): allowed to unverified accounts whatever UNVERIFIED_MAY_WRITE says. */
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * The global guard: every route needs a valid bearer access token unless marked @Public(). A token
 * that is sent is always checked, also on public routes; the result is `request.caller`.
 */
@Injectable()
export class AuthGuard implements CanActivate {
  constructor(
    private readonly reflector: Reflector,
    private readonly auth: AuthService,
    private readonly verification: EmailVerification,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
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
      const other = request.headers.authorization !== undefined; // a scheme other than Bearer
      throw authenticationRequired(other ? 'Authorization must use the Bearer scheme (RFC 6750 §2.1)' : undefined);
    }
    request.caller = await this.auth.authenticate(token);
    if (!this.config.auth.accounts.unverifiedMayWrite && access === undefined && !SAFE_METHODS.has(request.method)) {
      const allowed = this.reflector.getAllAndOverride<boolean | undefined>(ALLOW_UNVERIFIED, [
        context.getHandler(),
        context.getClass(),
      ]);
      if (!allowed) await this.verification.assertVerified(request.caller); // 403 while unverified
    }
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
