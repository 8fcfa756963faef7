import { Injectable } from '@nestjs/common';

/** Set when shutdown begins: readiness turns 503 while in-flight and late requests are still served. */
@Injectable()
export class Draining {
  private since?: Date;

  begin(): void {
    this.since ??= new Date();
  }

  get active(): boolean {
    return this.since !== undefined;
  }
}
