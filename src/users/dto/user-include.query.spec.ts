import { toUserInclude } from './user-include.query';

describe('toUserInclude', () => {
  it('includes everything when the parameter is absent, nothing when it is empty', () => {
    expect(toUserInclude(undefined)).toEqual({ profile: true, posts: true, comments: true });
    expect(toUserInclude([])).toEqual({ profile: false, posts: false, comments: false });
  });

  it('implies posts when their comments are asked for', () => {
    expect(toUserInclude(['posts.comments'])).toEqual({ profile: false, posts: true, comments: true });
    expect(toUserInclude(['posts'])).toEqual({ profile: false, posts: true, comments: false });
  });
});
