import { Body, Controller, Delete, Get, Patch, Post, Query, Req, Res } from '@nestjs/common';
import { ApiCreatedResponse, ApiNotModifiedResponse, ApiOkResponse, ApiTags } from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { AccessPolicy } from '../auth/access-policy';
import { CurrentUser, Public, SignedIn } from '../auth/auth.decorators';
import type { Caller } from '../auth/caller';
import { Conditions, type Preconditions, withETag } from '../http/conditional-requests';
import { IdParam } from '../http/id-param';
import { Idempotent } from '../idempotency/idempotent.decorator';
import { MessageResponse } from '../http/message.response';
import { ApiPreconditions, ApiProblems, ETAG_HEADER, LINK_HEADER, LOCATION_HEADER } from '../http/openapi';
import { nextPageLink } from '../http/pagination';
import { PaginationQuery } from '../http/pagination.query';
import { CreatePostWithCommentsDto } from './dto/create-post.dto';
import { ListPostsQuery } from './dto/list-posts.query';
import { PostResponse } from './dto/post.response';
import { UpdatePostDto } from './dto/update-post.dto';
import { PostsService } from './posts.service';
import { NoBody } from '../http/validation';

@ApiTags('posts')
@Controller()
export class PostsController {
  constructor(
    private readonly posts: PostsService,
    private readonly access: AccessPolicy,
  ) {}

  /**
   * Creates a post and its initial comments in one transaction: one bad comment and nothing is stored.
   * The user themself or an admin; the comments are the caller's (only admins may name an `authorId`).
   */
  @Post('users/:userId/posts')
  @SignedIn()
  @Idempotent()
  @ApiCreatedResponse({ type: PostResponse, headers: { ...LOCATION_HEADER, ...ETAG_HEADER } })
  @ApiProblems(404, 413, 415, 422)
  async create(
    @CurrentUser() caller: Caller,
    @IdParam('userId') userId: number,
    @Body() dto: CreatePostWithCommentsDto,
    @Conditions() conditions: Preconditions,
    @Res({ passthrough: true }) res: FastifyReply,
  ): Promise<PostResponse> {
    await this.access.assertMayActAs(caller, userId);
    const comments = this.access.assignCommentAuthors(caller, dto.comments ?? [], (i) => `comments.${i}.authorId`);
    const post = await this.posts.create(userId, { ...dto, comments }, conditions);
    res.header('Location', `/posts/${post.id}`);
    return withETag(res, post.version, post);
  }

  /** A user's posts, newest first. */
  @Get('users/:userId/posts')
  @Public()
  @ApiOkResponse({ type: [PostResponse], headers: LINK_HEADER })
  @ApiProblems(404)
  async listByAuthor(
    @IdParam('userId') userId: number,
    @Query() query: PaginationQuery,
    @Req() req: FastifyRequest,
    @Res({ passthrough: true }) res: FastifyReply,
  ): Promise<PostResponse[]> {
    const page = await this.posts.listByAuthor(userId, query);
    if (page.nextCursor) res.header('Link', nextPageLink(req, query.limit, page.nextCursor));
    return page.items;
  }

  /** Posts with author and comments, filtered by author and title, sorted by a whitelisted field. */
  @Get('posts')
  @Public()
  @ApiOkResponse({ type: [PostResponse], headers: LINK_HEADER })
  @ApiProblems()
  async findAll(
    @Query() query: ListPostsQuery,
    @Req() req: FastifyRequest,
    @Res({ passthrough: true }) res: FastifyReply,
  ): Promise<PostResponse[]> {
    const page = await this.posts.findAll(query);
    if (page.nextCursor) res.header('Link', nextPageLink(req, query.limit, page.nextCursor));
    return page.items;
  }

  /** One post with its author summary and comments, oldest first. */
  @Get('posts/:id')
  @Public()
  @ApiOkResponse({ type: PostResponse, headers: ETAG_HEADER })
  @ApiNotModifiedResponse({ description: 'If-None-Match matched the current ETag', headers: ETAG_HEADER })
  @ApiProblems(404)
  async findOne(@IdParam() id: number, @Res({ passthrough: true }) res: FastifyReply): Promise<PostResponse> {
    const post = await this.posts.findOne(id);
    return withETag(res, post.version, post);
  }

  /** Updates title and/or body (the author or an admin); with If-Match, a stale ETag gets 412. */
  @Patch('posts/:id')
  @SignedIn()
  @Idempotent()
  @ApiOkResponse({ type: PostResponse, headers: ETAG_HEADER })
  @ApiPreconditions()
  @ApiProblems(404, 412, 413, 415)
  async update(
    @CurrentUser() caller: Caller,
    @IdParam() id: number,
    @Body() dto: UpdatePostDto,
    @Conditions() conditions: Preconditions,
    @Res({ passthrough: true }) res: FastifyReply,
  ): Promise<PostResponse> {
    await this.access.assertMayEditPost(caller, id);
    const post = await this.posts.update(id, dto, conditions);
    return withETag(res, post.version, post);
  }

  /** Deletes the post and its comments (the author or an admin). */
  @Delete('posts/:id')
  @SignedIn()
  @Idempotent()
  @ApiOkResponse({ type: MessageResponse })
  @ApiPreconditions()
  @ApiProblems(404, 412)
  @NoBody()
  async remove(
    @CurrentUser() caller: Caller,
    @IdParam() id: number,
    @Conditions() conditions: Preconditions,
  ): Promise<MessageResponse> {
    await this.access.assertMayEditPost(caller, id);
    await this.posts.remove(id, conditions);
    return { message: 'Post deleted' };
  }
}
