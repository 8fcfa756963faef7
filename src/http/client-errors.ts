import type { FieldError } from './problem';

/** An error Node's HTTP parser raised for a request it could not read (`clientError`). */
export interface ClientError extends Error {
  code?: string;
  /** Where in `rawPacket` the parser stopped. */
  bytesParsed?: number;
  /** The bytes the parser was reading when it stopped (the current chunk, not always the whole request). */
  rawPacket?: unknown;
}

const REQUEST_LINE =
  'The request line must be a method, a target and HTTP/1.1 (or HTTP/1.0), ending in CRLF (RFC 9112 §3)';
const VERSION = { field: 'HTTP-version', message: REQUEST_LINE };
const FIELD_LINE =
  'A header field must be a token name, ":" and a value of visible characters, on one line ending in CRLF (RFC 9112 §5)';

/** The part of the request each of llhttp's error codes faults, and what it must be instead. */
const FAULTS: Record<string, { field: string; message: string }> = {
  HPE_INVALID_METHOD: { field: 'method', message: 'The method must be a token, e.g. GET (RFC 9110 §9.1)' },
  HPE_INVALID_URL: {
    field: 'request-target',
    message: 'The request target must be a URI path and query without spaces or control characters (RFC 9112 §3.2)',
  },
  HPE_INVALID_VERSION: VERSION,
  HPE_INVALID_CONSTANT: VERSION,
  HPE_INVALID_CONTENT_LENGTH: {
    field: 'Content-Length',
    message: 'Content-Length must be one number of decimal digits (RFC 9110 §8.6)',
  },
  HPE_UNEXPECTED_CONTENT_LENGTH: {
    field: 'Content-Length',
    message: 'Content-Length must be sent once, and not with Transfer-Encoding (RFC 9112 §6.3)',
  },
  HPE_INVALID_TRANSFER_ENCODING: {
    field: 'Transfer-Encoding',
    message: 'Transfer-Encoding must end in chunked and must not come with Content-Length (RFC 9112 §6.1, §6.3)',
  },
  HPE_INVALID_CHUNK_SIZE: { field: 'Transfer-Encoding', message: 'The chunked body is malformed (RFC 9112 §7.1)' },
  HPE_CLOSED_CONNECTION: {
    field: 'Content-Length',
    message:
      'More bytes followed a request with Connection: close: a body longer than its Content-Length (RFC 9112 §6.3, §9.6)',
  },
  HPE_CHUNK_EXTENSIONS_OVERFLOW: {
    field: 'Transfer-Encoding',
    message: 'The chunked body has chunk extensions too large to read (RFC 9112 §7.1.1)',
  },
};

/** A token (RFC 9110 §5.6.2), as a field name must be; bounded, since it is quoted back. */
const FIELD_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}$/;

/**
 * Status, detail and `errors` (RFC 9457 §3) for a request Node's parser refused: the part of the
 * request at fault, by the parser's error code — the method, the request target, the HTTP version,
 * Content-Length, Transfer-Encoding — or else by the line the parser stopped on (lineAtFault). 431 for a header section over Node's limit (RFC 6585 §5, naming the
 * field being read when it was reached), 408 for one that did not arrive in time (RFC 9110 §15.5.9).
 */
export function clientErrorProblem(error: ClientError): { status: number; detail: string; errors?: FieldError[] } {
  if (error.code === 'ERR_HTTP_REQUEST_TIMEOUT') return { status: 408, detail: 'The request did not arrive in time' };
  if (error.code === 'HPE_HEADER_OVERFLOW') {
    const message = 'The header section is larger than this server accepts (RFC 6585 §5)';
    return { status: 431, detail: message, errors: [{ field: lineAtFault(error), messages: [message] }] };
  }
  const known = error.code === undefined ? undefined : FAULTS[error.code];
  const field = known?.field ?? lineAtFault(error);
  const message = known?.message ?? (field === 'request-line' ? REQUEST_LINE : FIELD_LINE);
  return { status: 400, detail: `The request could not be read: ${field}`, errors: [{ field, messages: [message] }] };
}

/**
 * The line where the parser stopped: `request-line` when it is the request's first, else the name of
 * its header field (of the line before, for a line that continues it with leading whitespace:
 * obs-fold, RFC 9112 §5.2) if that name is a token, else `headers`.
 */
function lineAtFault({ rawPacket, bytesParsed }: ClientError): string {
  if (!Buffer.isBuffer(rawPacket) || bytesParsed === undefined || rawPacket.length === 0) return 'headers';
  const text = rawPacket.toString('latin1');
  const at = Math.min(bytesParsed, text.length - 1);
  let start = text.lastIndexOf('\n', at - 1) + 1;
  // The first line of the chunk: the request line, unless the chunk began inside the header section.
  if (start === 0) return /^[!#$%&'*+.^_`|~0-9A-Za-z-]+ /.test(text) ? 'request-line' : 'headers';
  let line = lineAt(text, start);
  while (/^[ \t]/.test(line) && start > 1) {
    start = text.lastIndexOf('\n', start - 2) + 1;
    line = lineAt(text, start);
  }
  const name = line.split(':', 1)[0].trimEnd();
  return start > 0 && FIELD_NAME.test(name) ? name : 'headers';
}

/** The line of `text` that begins at `start`, without its CRLF. */
function lineAt(text: string, start: number): string {
  const end = text.indexOf('\n', start);
  return text.slice(start, end < 0 ? undefined : end).replace(/\r$/, '');
}
