import { Body, Controller, Delete, Get, Patch, Post, Query, Req, Res } from '@nestjs/common';
import { ApiCreatedResponse, ApiNotModifiedResponse, ApiOkResponse, ApiTags } from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { nextPageLink } from '../http/pagination';
import { Conditions, type Preconditions, withETag } from '../http/conditional-requests';
import { IdParam } from '../http/id-param';
import { MessageResponse } from '../http/message.response';
import { ApiPreconditions, ApiProblems, ETAG_HEADER, LINK_HEADER, LOCATION_HEADER } from '../http/openapi';
import { CreateUserDto } from './dto/create-user.dto';
import { UpdateUserDto } from './dto/update-user.dto';
import { GetUserQuery, ListUsersQuery, toUserInclude } from './dto/user-include.query';
import { UserResponse } from './dto/user.response';
import { UsersService } from './users.service';

@ApiTags('users')
@Controller('users')
export class UsersController {
  constructor(private readonly users: UsersService) {}

  /** Creates a user, with an optional profile and initial posts, in one transaction. */
  @Post()
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
  @ApiOkResponse({ type: [UserResponse], headers: LINK_HEADER })
  @ApiProblems()
  async findAll(
    @Query() query: ListUsersQuery,
    @Req() req: FastifyRequest,
    @Res({ passthrough: true }) res: FastifyReply,
  ): Promise<UserResponse[]> {
    const page = await this.users.findAll(query, toUserInclude(query.include));
    if (page.hasMore) res.header('Link', nextPageLink(req, query));
    return page.items;
  }

  /** One user with profile and posts → comments. Strong ETag; a matching If-None-Match gets 304. */
  @Get(':id')
  @ApiOkResponse({ type: UserResponse, headers: ETAG_HEADER })
  @ApiNotModifiedResponse({ description: 'If-None-Match matched the current ETag', headers: ETAG_HEADER })
  @ApiProblems(404)
  async findOne(
    @IdParam() id: number,
    @Query() query: GetUserQuery,
    @Res({ passthrough: true }) res: FastifyReply,
  ): Promise<UserResponse> {
    const user = await this.users.findOne(id, toUserInclude(query.include));
    return withETag(res, user.version, user);
  }

  /** Updates the given fields; profile fields are merged, `profile: null` removes it. With If-Match, a stale ETag gets 412 and changes nothing. */
  @Patch(':id')
  @ApiOkResponse({ type: UserResponse, headers: ETAG_HEADER })
  @ApiPreconditions()
  @ApiProblems(404, 409, 412, 413, 415)
  async update(
    @IdParam() id: number,
    @Body() dto: UpdateUserDto,
    @Conditions() conditions: Preconditions,
    @Res({ passthrough: true }) res: FastifyReply,
  ): Promise<UserResponse> {
    const user = await this.users.update(id, dto, conditions);
    return withETag(res, user.version, user);
  }

  /** Deletes the user with their profile, posts and every comment they wrote or received. */
  @Delete(':id')
  @ApiOkResponse({ type: MessageResponse })
  @ApiPreconditions()
  @ApiProblems(404, 412)
  async remove(@IdParam() id: number, @Conditions() conditions: Preconditions): Promise<MessageResponse> {
    await this.users.remove(id, conditions);
    return { message: 'User deleted' };
  }
}
