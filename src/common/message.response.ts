/** The body of a successful DELETE, e.g. `{"message": "User deleted"}`. */
export class MessageResponse {
  /** @example User deleted */
  message!: string;
}
