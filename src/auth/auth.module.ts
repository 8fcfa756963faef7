import { Logger, Module } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { JwtModule } from '@nestjs/jwt';
import { createSecretKey, randomBytes } from 'node:crypto';
import { APP_CONFIG, type AppConfig } from '../config/app.config';
import { MailModule } from '../mail/mail.module';
import { AccessPolicy } from './access-policy';
import { AccountSessions } from './account-sessions';
import { AccountTokensRepository } from './account-tokens.repository';
import { AccountsRepository } from './accounts.repository';
import { AccountsService } from './accounts.service';
import { AdminBootstrap } from './admin-bootstrap';
import { AuthGuard } from './auth.guard';
import { AuthService } from './auth.service';
import { EmailVerification } from './email-verification';
import { MailedTokens } from './mailed-tokens';
import { OwnershipRepository } from './ownership.repository';
import { PasswordReset } from './password-reset';
import { PasswordHasher } from './passwords';
import { SessionActivity } from './session-activity';
import { SessionsRepository } from './sessions.repository';
import { Throttles } from './throttles';
import { AccessTokens, TOKEN_ALGORITHM, TOKEN_AUDIENCE, TOKEN_ISSUER } from './tokens';

/**
 * Identity: accounts, passwords, sessions, tokens, the global AuthGuard and the access policy. Feature
 * modules import it for the policy and AccountsService (the one entry point for identity changes,
 * ADR 0016); AuthApiModule adds the /auth routes.
 */
@Module({
  imports: [
    MailModule,
    JwtModule.registerAsync({
      inject: [APP_CONFIG],
      useFactory: ({ auth }: AppConfig) => {
        const secret = auth.jwtSecret ?? randomBytes(48).toString('base64url');
        if (!auth.jwtSecret) {
          new Logger('AuthModule').warn(
            'No JWT_SECRET configured: tokens are signed with a key that dies with this process',
          );
        }
        return {
          // A KeyObject made once: given the string, jsonwebtoken makes one per sign and verify
          // (createSecretKey; its cost: docs/benchmarks/history.md). Its docs accept either.
          secret: createSecretKey(Buffer.from(secret)),
          signOptions: {
            algorithm: TOKEN_ALGORITHM,
            issuer: TOKEN_ISSUER,
            audience: TOKEN_AUDIENCE,
            expiresIn: auth.accessTokenTtlSeconds,
          },
          verifyOptions: { algorithms: [TOKEN_ALGORITHM], issuer: TOKEN_ISSUER, audience: TOKEN_AUDIENCE },
        };
      },
    }),
  ],
  providers: [
    AccessPolicy,
    AccessTokens,
    AccountSessions,
    AccountsRepository,
    AccountsService,
    AccountTokensRepository,
    AdminBootstrap,
    AuthService,
    EmailVerification,
    MailedTokens,
    OwnershipRepository,
    PasswordHasher,
    PasswordReset,
    SessionActivity,
    SessionsRepository,
    Throttles,
    { provide: APP_GUARD, useClass: AuthGuard },
  ],
  // What features use: the access policy, and AccountsService for every identity change. The rest is
  // for the /auth routes (AuthApiModule).
  exports: [AccessPolicy, AccountSessions, AccountsService, AuthService, EmailVerification, PasswordReset],
})
export class AuthModule {}
