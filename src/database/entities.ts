import { AccountToken } from '../auth/entities/account-token.entity';
import { RefreshToken } from '../auth/entities/refresh-token.entity';
import { Session } from '../auth/entities/session.entity';
import { Comment } from '../comments/entities/comment.entity';
import { IdempotencyKey, IdempotencyKeyCount } from '../idempotency/idempotency-key.entity';
import { OutboundMail } from '../mail/entities/outbound-mail.entity';
import { Post } from '../posts/entities/post.entity';
import { Profile } from '../users/entities/profile.entity';
import { User } from '../users/entities/user.entity';

/** Every entity, listed explicitly so the app, the CLI and the tests load the same classes. */
export const entities = [
  User,
  Profile,
  Post,
  Comment,
  Session,
  RefreshToken,
  AccountToken,
  OutboundMail,
  IdempotencyKey,
  IdempotencyKeyCount,
];
