import { Inject, Injectable } from '@nestjs/common';
import { APP_CONFIG, type AppConfig } from '../config/app.config';
import { SessionsRepository } from './sessions.repository';

/** Sessions remembered at most; past it, the entries older than the resolution are dropped. */
const REMEMBERED = 10_000;

/**
 * Keeps `sessions.last_used_at` current without a write per request: a session's time is written at
 * most once per SESSION_LAST_USED_RESOLUTION_SECONDS. This process remembers when it last wrote (or
 * created) each session and skips the statement within the interval, so nearly every authenticated
 * request costs no write; the UPDATE's own condition keeps several instances to about one write per
 * interval too.
 */
@Injectable()
export class SessionActivity {
  private readonly recorded = new Map<string, number>();
  private readonly resolutionMs: number;

  constructor(
    private readonly sessions: SessionsRepository,
    @Inject(APP_CONFIG) config: AppConfig,
  ) {
    this.resolutionMs = config.auth.accounts.lastUsedResolutionSeconds * 1000;
  }

  /** A session was just created here: its creation time stands for "last used" for now. */
  created(sessionId: string): void {
    this.remember(sessionId, Date.now());
  }

  /** An access token of `sessionId` was used: writes the time if the stored one is older than the resolution. */
  async used(sessionId: string): Promise<void> {
    const now = Date.now();
    const last = this.recorded.get(sessionId);
    if (last !== undefined && now - last < this.resolutionMs) return;
    this.remember(sessionId, now);
    await this.sessions.touch(sessionId, this.resolutionMs / 1000);
  }

  private remember(sessionId: string, at: number): void {
    if (this.recorded.size >= REMEMBERED) {
      for (const [id, time] of this.recorded) if (at - time >= this.resolutionMs) this.recorded.delete(id);
      if (this.recorded.size >= REMEMBERED) this.recorded.clear();
    }
    this.recorded.set(sessionId, at);
  }
}
