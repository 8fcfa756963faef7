import { Injectable, NotFoundException } from '@nestjs/common';
import type { Caller } from './caller';
import type { SessionResponse } from './dto/session.response';
import { SessionsRepository } from './sessions.repository';

/** Sessions listed at most: far more than anyone has live at once (each ends by SESSION_TTL_SECONDS). */
export const SESSIONS_LISTED = 100;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * A user's view of their own sessions: list them, end one, end all. Ending takes effect with the
 * next request, as logout does: every access token is checked against its live session.
 */
@Injectable()
export class AccountSessions {
  constructor(private readonly sessions: SessionsRepository) {}

  /** The caller's live sessions, most recently used first (at most SESSIONS_LISTED), theirs marked `current`. */
  async list(caller: Caller): Promise<SessionResponse[]> {
    const sessions = await this.sessions.listLive(caller.id, SESSIONS_LISTED);
    return sessions.map((session) => ({ ...session, current: session.id === caller.sessionId }));
  }

  /** Ends one of the caller's live sessions. 404 for anyone else's, an ended one, or a malformed id alike. */
  async end(caller: Caller, sessionId: string): Promise<void> {
    if (!UUID.test(sessionId) || !(await this.sessions.revokeOwn(caller.id, sessionId.toLowerCase()))) {
      throw new NotFoundException(`Session ${sessionId.slice(0, 36)} not found`);
    }
  }

  /** Ends every session of the caller, theirs too unless `keepCurrent`. */
  async endAll(caller: Caller, keepCurrent = false): Promise<void> {
    await this.sessions.revokeAllOf(caller.id, keepCurrent ? caller.sessionId : undefined);
  }
}
