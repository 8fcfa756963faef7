import { Body, Controller, Delete, Get, Patch, Post, Query, Req, Res } from '@nestjs/common';
import { ApiBody, ApiCreatedResponse, ApiNotModifiedResponse, ApiOkResponse, ApiTags } from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { AccessPolicy, mayReadPrivateFields } from '../auth/access-policy';
import { AllowUnverified, CurrentUser, Public, SignedIn } from '../auth/auth.decorators';
import type { Caller } from '../auth/caller';
import { nextPageLink } from '../http/pagination';
import { Conditions, type Preconditions, withETag } from '../http/conditional-requests';
import { IdParam } from '../http/id-param';
import { Idempotent } from '../idempotency/idempotent.decorator';
import { MessageResponse } from '../http/message.response';
import { vary } from '../http/vary';
import { ApiPreconditions, ApiProblems, ETAG_HEADER, LINK_HEADER, LOCATION_HEADER } from '../http/openapi';
import { CreateUserDto } from './dto/create-user.dto';
import { UPDATE_USER_EXAMPLES, UpdateUserDto } from './dto/update-user.dto';
import { GetUserQuery, ListUsersQuery, toUserInclude } from './dto/user-include.query';
import { PRIVATE_USER_FIELDS, UserResponse } from './dto/user.response';
import type { User } from './entities/user.entity';
import { UsersService } from './users.service';
import { NoBody } from '../http/validation';

@ApiTags('users')
@Controller('users')
export class UsersController {
  constructor(
    private readonly users: UsersService,
    private readonly access: AccessPolicy,
  ) {}

  /** Sign-up: creates a user with a password, an optional profile and initial posts, in one transaction. */
  @Post()
  @Public()
  @Idempotent({ lookUpFirst: true })
  @ApiCreatedResponse({ type: UserResponse, headers: { ...LOCATION_HEADER, ...ETAG_HEADER } })
  @ApiProblems(409, 413, 415)
  async create(
    @Body() dto: CreateUserDto,
    @Conditions() conditions: Preconditions,
    @Res({ passthrough: true }) res: FastifyReply,
  ): Promise<UserResponse> {
    const user = await this.users.create(dto, conditions);
    res.header('Location', `/users/${user.id}`);
    return withETag(res, user.version, user);
  }

  /** Users ordered by name, then id, each with profile and posts → comments unless `include` says otherwise. */
  @Get()
  @Public()
  @ApiOkResponse({ type: [UserResponse], headers: LINK_HEADER })
  @ApiProblems()
  async findAll(
    @CurrentUser() caller: Caller | undefined,
    @Query() query: ListUsersQuery,
    @Req() req: FastifyRequest,
    @Res({ passthrough: true }) res: FastifyReply,
  ): Promise<UserResponse[]> {
    const page = await this.users.findAll(query, toUserInclude(query.include));
    if (page.nextCursor) res.header('Link', nextPageLink(req, query.limit, page.nextCursor));
    return hidePrivateFields(res, caller, page.items);
  }

  /** One user with profile and posts → comments. Strong ETag; a matching If-None-Match gets 304. */
  @Get(':id')
  @Public()
  @ApiOkResponse({ type: UserResponse, headers: ETAG_HEADER })
  @ApiNotModifiedResponse({ description: 'If-None-Match matched the current ETag', headers: ETAG_HEADER })
  @ApiProblems(404)
  async findOne(
    @CurrentUser() caller: Caller | undefined,
    @IdParam() id: number,
    @Query() query: GetUserQuery,
    @Res({ passthrough: true }) res: FastifyReply,
  ): Promise<UserResponse> {
    const user = await this.users.findOne(id, toUserInclude(query.include));
    return withETag(res, user.version, hidePrivateFields(res, caller, [user])[0]);
  }

  /** Updates the given fields; profile fields are merged, `profile: null` removes it. With If-Match, a stale ETag gets 412 and changes nothing. */
  @Patch(':id')
  @SignedIn()
  // Swagger UI pre-fills "Try it out" with the first example: one a user may send for themself.
  @ApiBody({ type: UpdateUserDto, examples: UPDATE_USER_EXAMPLES })
  @AllowUnverified() // e.g. to fix a mistyped address (UNVERIFIED_MAY_WRITE=false)
  @Idempotent({ lookUpFirst: true })
  @ApiOkResponse({ type: UserResponse, headers: ETAG_HEADER })
  @ApiPreconditions()
  @ApiProblems(404, 409, 412, 413, 415)
  async update(
    @CurrentUser() caller: Caller,
    @IdParam() id: number,
    @Body() dto: UpdateUserDto,
    @Conditions() conditions: Preconditions,
    @Req() req: FastifyRequest,
    @Res({ passthrough: true }) res: FastifyReply,
  ): Promise<UserResponse> {
    await this.access.assertMayActAs(caller, id);
    const user = await this.users.update(id, dto, conditions, caller, req.ip);
    return withETag(res, user.version, user);
  }

  /** Deletes the user with their profile, posts and every comment they wrote or received. */
  @Delete(':id')
  @SignedIn()
  @AllowUnverified()
  @Idempotent()
  @ApiOkResponse({ type: MessageResponse })
  @ApiPreconditions()
  @ApiProblems(404, 409, 412)
  @NoBody()
  async remove(
    @CurrentUser() caller: Caller,
    @IdParam() id: number,
    @Conditions() conditions: Preconditions,
  ): Promise<MessageResponse> {
    await this.access.assertMayActAs(caller, id);
    await this.users.remove(id, conditions);
    return { message: 'User deleted' };
  }
}

/**
 * Unsets the private fields (email, role) of every user the caller may not see them for, so the
 * serializer leaves them out (see PRIVATE_USER_FIELDS). The answer then depends on who asks: `Vary`.
 */
function hidePrivateFields(res: FastifyReply, caller: Caller | undefined, users: User[]): User[] {
  vary(res, 'Authorization');
  for (const user of users) {
    if (mayReadPrivateFields(caller, user.id)) continue;
    // Assigned undefined rather than deleted: `delete` would turn each row into a slow dictionary object.
    for (const field of PRIVATE_USER_FIELDS) (user as Partial<User>)[field] = undefined;
  }
  return users;
}
