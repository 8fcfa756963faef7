/**
 * Sessions remembered at most. Past it the memory starts over: each session then costs one more
 * write of its "last used" time, nothing else.
 */
const REMEMBERED = 10_000;

/**
 * When this process last wrote (or created) each session's "last used" time, in ms since the epoch.
 * Process-wide, so that SessionsRepository.create, whoever calls it, records a new session.
 */
export const recorded = new Map<string, number>();

/** A session was just created in this process: its creation time stands for "last used" for now. */
export function sessionCreated(sessionId: string): void {
  remember(sessionId, Date.now());
}

/** Notes that `sessionId`'s time was recorded at `at` (ms). */
export function remember(sessionId: string, at: number): void {
  if (recorded.size >= REMEMBERED && !recorded.has(sessionId)) recorded.clear();
  recorded.set(sessionId, at);
}
