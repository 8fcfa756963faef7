import { Logger, Module } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { JwtModule } from '@nestjs/jwt';
import { createSecretKey, randomBytes } from 'node:crypto';
import { APP_CONFIG, type AppConfig } from '../config/app.config';
import { AccessPolicy } from './access-policy';
import { AccountsRepository } from './accounts.repository';
import { AdminBootstrap } from './admin-bootstrap';
import { AuthGuard } from './auth.guard';
import { AuthService } from './auth.service';
import { LoginThrottle } from './login-throttle';
import { OwnershipRepository } from './ownership.repository';
import { PasswordHasher } from './passwords';
import { SessionsRepository } from './sessions.repository';
import { AccessTokens, TOKEN_ALGORITHM, TOKEN_AUDIENCE, TOKEN_ISSUER } from './tokens';

/**
 * Identity: passwords, sessions, tokens, the global AuthGuard and the access policy. Feature modules
 * import it for the policy and the hasher; AuthApiModule adds the /auth routes.
 */
@Module({
  imports: [
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
          // (createSecretKey, ~3–4 % of an authenticated write's CPU). Its docs accept either.
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
    AccountsRepository,
    AdminBootstrap,
    AuthService,
    LoginThrottle,
    OwnershipRepository,
    PasswordHasher,
    SessionsRepository,
    { provide: APP_GUARD, useClass: AuthGuard },
  ],
  exports: [AccessPolicy, AccountsRepository, AuthService, PasswordHasher, SessionsRepository],
})
export class AuthModule {}
