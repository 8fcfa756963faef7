import { Inject, Injectable } from '@nestjs/common';
import { APP_CONFIG, type AppConfig } from '../config/app.config';
import { recorded, remember } from './session-times';
import { SessionsRepository } from './sessions.repository';

/**
 * Keeps `sessions.last_used_at` current without a write per request: a session's time is written at
 * most once per SESSION_LAST_USED_RESOLUTION_SECONDS. This process remembers when it last wrote (or
 * created) each session and skips the statement within the interval, so nearly every authenticated
 * request costs no write; the UPDATE's own condition keeps several instances to about one write per
 * interval too.
 */
@Injectable()
export class SessionActivity {
  private readonly resolutionMs: number;

  constructor(
    private readonly sessions: SessionsRepository,
    @Inject(APP_CONFIG) config: AppConfig,
  ) {
    this.resolutionMs = config.auth.accounts.lastUsedResolutionSeconds * 1000;
  }

  /** An access token of `sessionId` was used: writes the time if the stored one is older than the resolution. */
  async used(sessionId: string): Promise<void> {
    const now = Date.now();
    const last = recorded.get(sessionId);
    if (last !== undefined && now - last < this.resolutionMs) return;
    remember(sessionId, now);
    await this.sessions.touch(sessionId, this.resolutionMs / 1000);
  }
}
