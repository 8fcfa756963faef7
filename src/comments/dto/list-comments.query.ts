import { CursorQuery } from '../../http/pagination.query';

/** Keyset pagination only: `cursor` is the opaque value from the previous page's `Link: rel="next"`. */
export class ListCommentsQuery extends CursorQuery {}
