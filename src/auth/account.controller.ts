import { Body, Controller, Delete, Get, HttpCode, Param, Post, Req, Res } from '@nestjs/common';
import { ApiAcceptedResponse, ApiBody, ApiNoContentResponse, ApiOkResponse, ApiParam, ApiTags } from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ParseUuidPipe } from '../http/id-param';
import { MessageResponse } from '../http/message.response';
import { ApiProblems } from '../http/openapi';
import { AccountSessions } from './account-sessions';
import { AllowUnverified, CurrentUser, Public, SignedIn } from './auth.decorators';
import type { Caller } from './caller';
import { LogoutAllDto, PasswordResetConfirmDto, PasswordResetRequestDto, VerifyEmailDto } from './dto/account.dto';
import { SessionResponse } from './dto/session.response';
import { EmailVerification } from './email-verification';
import { PasswordReset } from './password-reset';
import { NoBody } from '../http/validation';
import { Idempotent, NotIdempotent } from '../idempotency/idempotent.decorator';

/** The one answer to every password reset request, known address or not. */
const RESET_REQUESTED = 'If an account has this email address, a link to reset its password is on its way';

/** The account lifecycle under /auth: email verification, password reset, the caller's sessions (docs/accounts.md). */
@ApiTags('auth')
@Controller('auth')
export class AccountController {
  constructor(
    private readonly verification: EmailVerification,
    private readonly reset: PasswordReset,
    private readonly sessions: AccountSessions,
  ) {}

  /** Marks the address the token was mailed to as verified. 400 naming `token` when it is invalid, expired or used. */
  @Post('verify-email')
  @Public({ ignoreCredentials: true })
  @Idempotent()
  @HttpCode(204)
  @ApiNoContentResponse({ description: 'The email address is verified' })
  @ApiProblems(413, 415)
  async verifyEmail(@Body() dto: VerifyEmailDto): Promise<void> {
    await this.verification.verify(dto.token);
  }

  /** Mails a new verification link to the caller's address, unless it is verified already. Rate limited like resets. */
  @Post('verify-email/resend')
  @SignedIn()
  @AllowUnverified()
  @Idempotent({ lookUpFirst: true })
  @HttpCode(202)
  @ApiAcceptedResponse({ type: MessageResponse })
  @ApiProblems()
  @NoBody()
  async resendVerification(@CurrentUser() caller: Caller, @Req() req: FastifyRequest): Promise<MessageResponse> {
    await this.verification.resend(caller, req.ip);
    return { message: 'Unless your address is verified already, a new link is on its way' };
  }

  /**
   * Mails a password reset link if the address has an account. Always 202 with the same body, at once
   * (no enumeration); 429 when the address or the client asked too often.
   */
  @Post('password-reset')
  @Public({ ignoreCredentials: true })
  @NotIdempotent(
    'the answer is the same whatever happens, and the mail is queued after it so that its timing tells nothing; a retry sends another link, which is harmless',
  )
  @HttpCode(202)
  @ApiAcceptedResponse({ type: MessageResponse })
  @ApiProblems(413, 415)
  async requestPasswordReset(
    @Body() dto: PasswordResetRequestDto,
    @Req() req: FastifyRequest,
    @Res({ passthrough: true }) res: FastifyReply,
  ): Promise<MessageResponse> {
    await this.reset.request(dto.email, req.ip);
    void res.header('Cache-Control', 'no-store');
    return { message: RESET_REQUESTED };
  }

  /**
   * Sets a new password with the mailed token and ends every session of the account (sign in again).
   * 400 naming `token` when it is invalid, expired or used; `password` follows the sign-up rules.
   */
  @Post('password-reset/confirm')
  @Public({ ignoreCredentials: true })
  @Idempotent({ lookUpFirst: true })
  @HttpCode(204)
  @ApiNoContentResponse({ description: 'Password changed; every session ended' })
  @ApiProblems(413, 415)
  async confirmPasswordReset(@Body() dto: PasswordResetConfirmDto): Promise<void> {
    await this.reset.confirm(dto.token, dto.password);
  }

  /** The caller's live sessions, most recently used first (at most 100); `current` marks this one. */
  @Get('sessions')
  @SignedIn()
  @ApiOkResponse({ type: [SessionResponse] })
  @ApiProblems()
  async listSessions(
    @CurrentUser() caller: Caller,
    @Res({ passthrough: true }) res: FastifyReply,
  ): Promise<SessionResponse[]> {
    void res.header('Cache-Control', 'no-store');
    return this.sessions.list(caller);
  }

  /** Ends one of the caller's sessions (its tokens stop working with the next request). 404 for anyone else's. */
  @Delete('sessions/:id')
  @SignedIn()
  @AllowUnverified()
  @Idempotent()
  @HttpCode(204)
  @ApiParam({ name: 'id', format: 'uuid', description: 'A session id from GET /auth/sessions' })
  @ApiNoContentResponse({ description: 'The session has ended' })
  @ApiProblems(404)
  @NoBody()
  async endSession(@CurrentUser() caller: Caller, @Param('id', ParseUuidPipe) id: string): Promise<void> {
    await this.sessions.end(caller, id);
  }

  /** Ends every session of the caller, this one too unless `keepCurrent` is true. */
  @Post('logout-all')
  @SignedIn()
  @AllowUnverified()
  @Idempotent()
  @HttpCode(204)
  @ApiBody({ type: LogoutAllDto, required: false }) // @BodyMayBeAbsent: no body is `{}`
  @ApiNoContentResponse({ description: 'The sessions have ended' })
  @ApiProblems(413, 415)
  async logoutAll(@CurrentUser() caller: Caller, @Body() dto: LogoutAllDto = {}): Promise<void> {
    await this.sessions.endAll(caller, dto?.keepCurrent);
  }
}
