import { Module } from '@nestjs/common';
import { UsersModule } from '../users/users.module';
import { AuthController } from './auth.controller';
import { AuthModule } from './auth.module';

/** The /auth routes. Apart from AuthModule because /auth/me answers with the users feature. */
@Module({
  imports: [AuthModule, UsersModule],
  controllers: [AuthController],
})
export class AuthApiModule {}
