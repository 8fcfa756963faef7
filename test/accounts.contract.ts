import type { ContractSession } from './setup/contract-sessions';

const PASSWORD = 'correct horse battery staple';

/**
 * The account lifecycle's part of the OpenAPI contract session (test/openapi.e2e-spec.ts): each
 * operation's success and its documented problems. The contract app delivers no mail, so the
 * mailed tokens here are forged ones (400 naming `token`); test/accounts.e2e-spec.ts uses real ones.
 */
export const session: ContractSession = async (api, check, sample) => {
  const email = 'contract-accounts@example.com';
  await api.post('/users').send({ name: 'Contract', email, password: PASSWORD }).expect(201);
  const first = await api.post('/auth/login').set('User-Agent', 'contract/1').send({ email, password: PASSWORD });
  const second = await api.post('/auth/login').send({ email, password: PASSWORD });
  const asFirst = { Authorization: `Bearer ${first.body.accessToken}` };
  const asSecond = { Authorization: `Bearer ${second.body.accessToken}` };

  check('post', '/auth/verify-email', await api.post('/auth/verify-email').send(sample('VerifyEmailDto')));
  check('post', '/auth/verify-email', await api.post('/auth/verify-email').send({ token: 42 }));
  check('post', '/auth/verify-email/resend', await api.post('/auth/verify-email/resend').set(asFirst));
  check('post', '/auth/verify-email/resend', await api.post('/auth/verify-email/resend'));

  check('post', '/auth/password-reset', await api.post('/auth/password-reset').send({ email }));
  check('post', '/auth/password-reset', await api.post('/auth/password-reset').send(sample('PasswordResetRequestDto')));
  check('post', '/auth/password-reset', await api.post('/auth/password-reset').send({ email: 'not an email' }));
  check(
    'post',
    '/auth/password-reset/confirm',
    await api.post('/auth/password-reset/confirm').send(sample('PasswordResetConfirmDto')),
  );
  check(
    'post',
    '/auth/password-reset/confirm',
    await api.post('/auth/password-reset/confirm').send({ token: 'x', password: 'short' }),
  );

  const listed = check('get', '/auth/sessions', await api.get('/auth/sessions').set(asFirst));
  check('get', '/auth/sessions', await api.get('/auth/sessions'));
  const other = (listed.body as { id: string; current: boolean }[]).find((s) => !s.current)!;
  check('delete', '/auth/sessions/{id}', await api.delete(`/auth/sessions/${other.id}`).set(asFirst));
  check('delete', '/auth/sessions/{id}', await api.delete(`/auth/sessions/${other.id}`).set(asFirst));
  check('delete', '/auth/sessions/{id}', await api.delete(`/auth/sessions/${other.id}`).set(asSecond));
  check('post', '/auth/logout-all', await api.post('/auth/logout-all').set(asFirst).send(sample('LogoutAllDto')));
  check('post', '/auth/logout-all', await api.post('/auth/logout-all').set(asFirst).send({ keepCurrent: 'yes' }));
  check('post', '/auth/logout-all', await api.post('/auth/logout-all').set(asFirst));
  check('post', '/auth/logout-all', await api.post('/auth/logout-all').set(asFirst));
};
