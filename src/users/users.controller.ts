import { Body, Controller, Delete, Get, Headers, Patch, Post, Query, Req, Res } from '@nestjs/common';
import type { Request, Response } from 'express';
import { nextPageLink } from '../common/pagination';
import { ifMatchVersions, tagged } from '../common/conditional-requests';
import { IdParam } from '../common/id-param';
import { CreateUserDto } from './dto/create-user.dto';
import { UpdateUserDto } from './dto/update-user.dto';
import { GetUserQuery, ListUsersQuery, toUserInclude } from './dto/user-include.query';
import { UserResponse } from './dto/user.response';
import { UsersService } from './users.service';

@Controller('users')
export class UsersController {
  constructor(private readonly users: UsersService) {}

  @Post()
  async create(@Body() dto: CreateUserDto, @Res({ passthrough: true }) res: Response): Promise<UserResponse> {
    const user = await this.users.create(dto);
    res.location(`/users/${user.id}`);
    return tagged(res, user.version, UserResponse.from(user));
  }

  @Get()
  async findAll(
    @Query() query: ListUsersQuery,
    @Req() req: Request,
    @Res({ passthrough: true }) res: Response,
  ): Promise<UserResponse[]> {
    const page = await this.users.findAll(query, toUserInclude(query.include));
    if (page.hasMore) res.setHeader('Link', nextPageLink(req, query));
    return page.items.map((user) => UserResponse.from(user));
  }

  /** Strong ETag; a matching If-None-Match gets 304. */
  @Get(':id')
  async findOne(
    @IdParam() id: number,
    @Query() query: GetUserQuery,
    @Res({ passthrough: true }) res: Response,
  ): Promise<UserResponse> {
    const user = await this.users.findOne(id, toUserInclude(query.include));
    return tagged(res, user.version, UserResponse.from(user));
  }

  /** With If-Match, a stale ETag gets 412 and changes nothing. */
  @Patch(':id')
  async update(
    @IdParam() id: number,
    @Body() dto: UpdateUserDto,
    @Headers('if-match') ifMatch: string | undefined,
    @Res({ passthrough: true }) res: Response,
  ): Promise<UserResponse> {
    const user = await this.users.update(id, dto, ifMatchVersions(ifMatch));
    return tagged(res, user.version, UserResponse.from(user));
  }

  @Delete(':id')
  async remove(@IdParam() id: number, @Headers('if-match') ifMatch: string | undefined): Promise<{ message: string }> {
    await this.users.remove(id, ifMatchVersions(ifMatch));
    return { message: 'User deleted' };
  }
}
