import { Body, Controller, Delete, Get, Headers, Patch, Post, Query, Req, Res } from '@nestjs/common';
import type { Request, Response } from 'express';
import { ifMatchVersions, tagged } from '../common/conditional-requests';
import { IdParam } from '../common/id-param';
import { nextPageLink, PaginationQuery } from '../common/pagination';
import { CreatePostWithCommentsDto } from './dto/create-post.dto';
import { ListPostsQuery } from './dto/list-posts.query';
import { PostResponse } from './dto/post.response';
import { UpdatePostDto } from './dto/update-post.dto';
import { PostsService } from './posts.service';

@Controller()
export class PostsController {
  constructor(private readonly posts: PostsService) {}

  @Post('users/:userId/posts')
  async create(
    @IdParam('userId') userId: number,
    @Body() dto: CreatePostWithCommentsDto,
    @Res({ passthrough: true }) res: Response,
  ): Promise<PostResponse> {
    const post = await this.posts.create(userId, dto);
    res.location(`/posts/${post.id}`);
    return tagged(res, post.version, PostResponse.from(post));
  }

  @Get('users/:userId/posts')
  async findByAuthor(
    @IdParam('userId') userId: number,
    @Query() query: PaginationQuery,
    @Req() req: Request,
    @Res({ passthrough: true }) res: Response,
  ): Promise<PostResponse[]> {
    const page = await this.posts.findByAuthor(userId, query);
    if (page.hasMore) res.setHeader('Link', nextPageLink(req, query));
    return page.items.map((post) => PostResponse.from(post));
  }

  @Get('posts')
  async findAll(
    @Query() query: ListPostsQuery,
    @Req() req: Request,
    @Res({ passthrough: true }) res: Response,
  ): Promise<PostResponse[]> {
    const page = await this.posts.findAll(query);
    if (page.hasMore) res.setHeader('Link', nextPageLink(req, query));
    return page.items.map((post) => PostResponse.from(post));
  }

  @Get('posts/:id')
  async findOne(@IdParam() id: number, @Res({ passthrough: true }) res: Response): Promise<PostResponse> {
    const post = await this.posts.findOne(id);
    return tagged(res, post.version, PostResponse.from(post));
  }

  @Patch('posts/:id')
  async update(
    @IdParam() id: number,
    @Body() dto: UpdatePostDto,
    @Headers('if-match') ifMatch: string | undefined,
    @Res({ passthrough: true }) res: Response,
  ): Promise<PostResponse> {
    const post = await this.posts.update(id, dto, ifMatchVersions(ifMatch));
    return tagged(res, post.version, PostResponse.from(post));
  }

  @Delete('posts/:id')
  async remove(@IdParam() id: number, @Headers('if-match') ifMatch: string | undefined): Promise<{ message: string }> {
    await this.posts.remove(id, ifMatchVersions(ifMatch));
    return { message: 'Post deleted' };
  }
}
