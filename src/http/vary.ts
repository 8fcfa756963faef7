import type { FastifyReply } from 'fastify';

/**
 * Adds `field` to the response's `Vary` (RFC 9110 §12.5.5), keeping the members already there, so
 * a route's own `Vary: Authorization` and CORS's `Vary: Origin` never replace each other. Members
 * compare case-insensitively; `*` already covers every field.
 */
export function vary(reply: FastifyReply, field: string): void {
  const current = reply.getHeader('vary');
  if (current === undefined) {
    void reply.header('Vary', field); // the usual case: nothing to merge with
    return;
  }
  const members = [current]
    .flat()
    .flatMap((value) => String(value).split(','))
    .map((member) => member.trim())
    .filter(Boolean);
  if (members.some((member) => member === '*' || member.toLowerCase() === field.toLowerCase())) return;
  void reply.header('Vary', [...members, field].join(', '));
}
