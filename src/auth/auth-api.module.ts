import { Module } from '@nestjs/common';
import { UsersModule } from '../users/users.module';
import { AccountController } from './account.controller';
import { AuthController } from './auth.controller';
import { AuthModule } from './auth.module';

/** The /auth routes (login and tokens; the account lifecycle: AccountController). Apart from AuthModule because /auth/me answers with the users feature. */
@Module({
  imports: [AuthModule, UsersModule],
  controllers: [AuthController, AccountController],
})
export class AuthApiModule {}
