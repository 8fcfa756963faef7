import { Body, Controller, Delete, Get, Post, Query, Req, Res } from '@nestjs/common';
import { ApiCreatedResponse, ApiOkResponse, ApiTags } from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { AccessPolicy } from '../auth/access-policy';
import { CurrentUser, Public, SignedIn } from '../auth/auth.decorators';
import type { Caller } from '../auth/caller';
import { Conditions, type Preconditions } from '../http/conditional-requests';
import { IdParam } from '../http/id-param';
import { Idempotent } from '../idempotency/idempotent.decorator';
import { MessageResponse } from '../http/message.response';
import { ApiProblems, LINK_HEADER, LOCATION_HEADER } from '../http/openapi';
import { nextPageLink } from '../http/pagination';
import { CommentResponse } from './dto/comment.response';
import { CreateCommentDto } from './dto/create-comment.dto';
import { ListCommentsQuery } from './dto/list-comments.query';
import { CommentsService } from './comments.service';
import { NoBody } from '../http/validation';

@ApiTags('comments')
@Controller()
export class CommentsController {
  constructor(
    private readonly comments: CommentsService,
    private readonly access: AccessPolicy,
  ) {}

  /**
   * Adds a comment by the caller (any signed-in user); only an admin may name another `authorId`.
   * 404 for a missing post, 422 for a missing author.
   */
  @Post('posts/:postId/comments')
  @SignedIn()
  @Idempotent()
  @ApiCreatedResponse({ type: CommentResponse, headers: LOCATION_HEADER })
  @ApiProblems(404, 413, 415, 422)
  async create(
    @CurrentUser() caller: Caller,
    @IdParam('postId') postId: number,
    @Body() dto: CreateCommentDto,
    @Conditions() conditions: Preconditions,
    @Res({ passthrough: true }) res: FastifyReply,
  ): Promise<CommentResponse> {
    const [authored] = this.access.assignCommentAuthors(caller, [dto], () => 'authorId');
    const comment = await this.comments.create(postId, authored, conditions);
    res.header('Location', `/comments/${comment.id}`);
    return comment;
  }

  /** A post's comments, oldest first, keyset-paginated: follow `Link: rel="next"` (its cursor is opaque). */
  @Get('posts/:postId/comments')
  @Public()
  @ApiOkResponse({ type: [CommentResponse], headers: LINK_HEADER })
  @ApiProblems(404)
  async listForPost(
    @IdParam('postId') postId: number,
    @Query() query: ListCommentsQuery,
    @Req() req: FastifyRequest,
    @Res({ passthrough: true }) res: FastifyReply,
  ): Promise<CommentResponse[]> {
    const page = await this.comments.listForPost(postId, query);
    if (page.nextCursor) res.header('Link', nextPageLink(req, query.limit, page.nextCursor));
    return page.items;
  }

  @Get('comments/:id')
  @Public()
  @ApiOkResponse({ type: CommentResponse })
  @ApiProblems(404)
  async findOne(@IdParam() id: number): Promise<CommentResponse> {
    return this.comments.findOne(id);
  }

  /** The comment's author, the post's author, or an admin. */
  @Delete('comments/:id')
  @SignedIn()
  @Idempotent()
  @ApiOkResponse({ type: MessageResponse })
  @ApiProblems(404, 412)
  @NoBody()
  async remove(
    @CurrentUser() caller: Caller,
    @IdParam() id: number,
    @Conditions() conditions: Preconditions,
  ): Promise<MessageResponse> {
    await this.access.assertMayDeleteComment(caller, id);
    await this.comments.remove(id, conditions);
    return { message: 'Comment deleted' };
  }
}
