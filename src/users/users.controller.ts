import { Body, Controller, Delete, Get, Patch, Post, Query, Req, Res } from '@nestjs/common';
import type { Request, Response } from 'express';
import { nextPageLink } from '../common/pagination';
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
    return UserResponse.from(user);
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

  @Get(':id')
  async findOne(@IdParam() id: number, @Query() query: GetUserQuery): Promise<UserResponse> {
    return UserResponse.from(await this.users.findOne(id, toUserInclude(query.include)));
  }

  @Patch(':id')
  async update(@IdParam() id: number, @Body() dto: UpdateUserDto): Promise<UserResponse> {
    return UserResponse.from(await this.users.update(id, dto));
  }

  @Delete(':id')
  async remove(@IdParam() id: number): Promise<{ message: string }> {
    await this.users.remove(id);
    return { message: 'User deleted' };
  }
}
