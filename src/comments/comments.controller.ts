import { Body, Controller, Delete, Get, Post, Query, Req, Res } from '@nestjs/common';
import type { Request, Response } from 'express';
import { IdParam } from '../common/id-param';
import { CommentResponse } from './dto/comment.response';
import { CreateCommentDto } from './dto/create-comment.dto';
import { ListCommentsQuery } from './dto/list-comments.query';
import { CommentsService } from './comments.service';

@Controller()
export class CommentsController {
  constructor(private readonly comments: CommentsService) {}

  @Post('posts/:postId/comments')
  async create(
    @IdParam('postId') postId: number,
    @Body() dto: CreateCommentDto,
    @Res({ passthrough: true }) res: Response,
  ): Promise<CommentResponse> {
    const comment = await this.comments.create(postId, dto);
    res.location(`/comments/${comment.id}`);
    return CommentResponse.from(comment);
  }

  @Get('posts/:postId/comments')
  async listForPost(
    @IdParam('postId') postId: number,
    @Query() query: ListCommentsQuery,
    @Req() req: Request,
    @Res({ passthrough: true }) res: Response,
  ): Promise<CommentResponse[]> {
    const page = await this.comments.listForPost(postId, query);
    if (page.nextCursor) {
      const next = new URLSearchParams({ limit: String(query.limit), cursor: page.nextCursor });
      res.setHeader('Link', `<${req.path}?${next.toString()}>; rel="next"`);
    }
    return page.items.map((comment) => CommentResponse.from(comment));
  }

  @Get('comments/:id')
  async findOne(@IdParam() id: number): Promise<CommentResponse> {
    return CommentResponse.from(await this.comments.findOne(id));
  }

  @Delete('comments/:id')
  async remove(@IdParam() id: number): Promise<{ message: string }> {
    await this.comments.remove(id);
    return { message: 'Comment deleted' };
  }
}
