import { Body, Controller, Delete, Get, Post, Query, Req, Res } from '@nestjs/common';
import { ApiCreatedResponse, ApiOkResponse, ApiTags } from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { Conditions, type Preconditions } from '../http/conditional-requests';
import { IdParam } from '../http/id-param';
import { MessageResponse } from '../http/message.response';
import { ApiProblems, LINK_HEADER, LOCATION_HEADER } from '../http/openapi';
import { CommentResponse } from './dto/comment.response';
import { CreateCommentDto } from './dto/create-comment.dto';
import { ListCommentsQuery } from './dto/list-comments.query';
import { CommentsService } from './comments.service';

@ApiTags('comments')
@Controller()
export class CommentsController {
  constructor(private readonly comments: CommentsService) {}

  /** Adds a comment: 404 for a missing post, 422 for a missing author. */
  @Post('posts/:postId/comments')
  @ApiCreatedResponse({ type: CommentResponse, headers: LOCATION_HEADER })
  @ApiProblems(404, 413, 415, 422)
  async create(
    @IdParam('postId') postId: number,
    @Body() dto: CreateCommentDto,
    @Conditions() conditions: Preconditions,
    @Res({ passthrough: true }) res: FastifyReply,
  ): Promise<CommentResponse> {
    const comment = await this.comments.create(postId, dto, conditions);
    res.header('Location', `/comments/${comment.id}`);
    return comment;
  }

  /** A post's comments, oldest first, keyset-paginated: follow `Link: rel="next"` (its cursor is opaque). */
  @Get('posts/:postId/comments')
  @ApiOkResponse({ type: [CommentResponse], headers: LINK_HEADER })
  @ApiProblems(404)
  async listForPost(
    @IdParam('postId') postId: number,
    @Query() query: ListCommentsQuery,
    @Req() req: FastifyRequest,
    @Res({ passthrough: true }) res: FastifyReply,
  ): Promise<CommentResponse[]> {
    const page = await this.comments.listForPost(postId, query);
    if (page.nextCursor) {
      const next = new URLSearchParams({ limit: String(query.limit), cursor: page.nextCursor });
      res.header('Link', `<${req.originalUrl.split('?')[0]}?${next.toString()}>; rel="next"`);
    }
    return page.items;
  }

  @Get('comments/:id')
  @ApiOkResponse({ type: CommentResponse })
  @ApiProblems(404)
  async findOne(@IdParam() id: number): Promise<CommentResponse> {
    return this.comments.findOne(id);
  }

  @Delete('comments/:id')
  @ApiOkResponse({ type: MessageResponse })
  @ApiProblems(404, 412)
  async remove(@IdParam() id: number, @Conditions() conditions: Preconditions): Promise<MessageResponse> {
    await this.comments.remove(id, conditions);
    return { message: 'Comment deleted' };
  }
}
