import { once } from 'node:events';
import { connect } from 'node:net';

/**
 * Sends `request` as it is (a string is sent as latin1, one byte per character, so a test can write
 * any byte) on a fresh connection to 127.0.0.1:`port`, for what supertest cannot send: malformed
 * request lines, headers and encodings. Returns the whole answer (status line, headers, body)
 * decoded as UTF-8, once the server closes the connection or 5 s have passed.
 */
export async function exchange(port: number, request: string): Promise<string> {
  const socket = connect(port, '127.0.0.1');
  socket.on('error', () => undefined);
  await once(socket, 'connect');
  const chunks: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  socket.write(Buffer.from(request, 'latin1'));
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([once(socket, 'close'), new Promise((resolve) => (timer = setTimeout(resolve, 5_000)))]);
  clearTimeout(timer); // a pending timer would hold Jest open after the last test
  socket.destroy();
  return Buffer.concat(chunks).toString('utf8');
}

/** The status code of an answer from exchange(); NaN when it has no status line. */
export const statusOf = (answer: string): number => Number(/^HTTP\/1\.[01] (\d{3}) /.exec(answer)?.[1]);

/** The JSON body of an answer from exchange() (a problem, in these tests). */
export const bodyOf = (
  answer: string,
): { errors?: { field: string; messages: string[] }[] } & Record<string, unknown> =>
  JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4)) as { errors?: { field: string; messages: string[] }[] };
