import { Body, Controller, Get, HttpCode, Post, Req, Res } from '@nestjs/common';
import { ApiNoContentResponse, ApiOkResponse, ApiTags } from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { withETag } from '../http/conditional-requests';
import { ApiProblems, ETAG_HEADER } from '../http/openapi';
import { vary } from '../http/vary';
import { UserResponse } from '../users/dto/user.response';
import { UsersService } from '../users/users.service';
import { AllowUnverified, CurrentUser, Public, SignedIn } from './auth.decorators';
import { AuthService } from './auth.service';
import type { Caller } from './caller';
import { LoginDto, RefreshDto } from './dto/login.dto';
import { TokenResponse } from './dto/token.response';
import { NoBody } from '../http/validation';
import { Idempotent, NotIdempotent } from '../idempotency/idempotent.decorator';

@ApiTags('auth')
@Controller('auth')
export class AuthController {
  constructor(
    private readonly auth: AuthService,
    private readonly users: UsersService,
  ) {}

  /** A new session: an access token and a refresh token. 401 for a wrong email or password, alike. */
  @Post('login')
  @Public({ ignoreCredentials: true })
  @NotIdempotent('its answer carries new tokens, which are never stored; a retry opens another session')
  @HttpCode(200)
  @ApiOkResponse({ type: TokenResponse })
  @ApiProblems(401, 413, 415)
  async login(
    @Body() dto: LoginDto,
    @Req() req: FastifyRequest,
    @Res({ passthrough: true }) res: FastifyReply,
  ): Promise<TokenResponse> {
    noStore(res);
    return this.auth.login(dto.email, dto.password, req.ip, req.headers['user-agent']);
  }

  /** Exchanges a refresh token for a new pair; the old one stops working. Reusing one ends its session. */
  @Post('refresh')
  @Public({ ignoreCredentials: true })
  @NotIdempotent('its answer carries new tokens, which are never stored')
  @HttpCode(200)
  @ApiOkResponse({ type: TokenResponse })
  @ApiProblems(401, 413, 415)
  async refresh(@Body() dto: RefreshDto, @Res({ passthrough: true }) res: FastifyReply): Promise<TokenResponse> {
    noStore(res);
    return this.auth.refresh(dto.refreshToken);
  }

  /** Ends this session: its refresh token and access tokens stop working with the next request. */
  @Post('logout')
  @SignedIn()
  @AllowUnverified()
  @Idempotent()
  @HttpCode(204)
  @ApiNoContentResponse({ description: 'Signed out' })
  @NoBody()
  async logout(@CurrentUser() caller: Caller): Promise<void> {
    await this.auth.logout(caller);
  }

  /** The caller, as GET /users/{id} shows them to themselves (email and role included). */
  @Get('me')
  @SignedIn()
  @ApiOkResponse({ type: UserResponse, headers: ETAG_HEADER })
  async me(@CurrentUser() caller: Caller, @Res({ passthrough: true }) res: FastifyReply): Promise<UserResponse> {
    const user = await this.users.findOne(caller.id);
    vary(res, 'Authorization');
    return withETag(res, user.version, user);
  }
}

/** Tokens must not be cached by anyone on the way (RFC 6749 §5.1). */
function noStore(res: FastifyReply): void {
  void res.header('Cache-Control', 'no-store');
}
