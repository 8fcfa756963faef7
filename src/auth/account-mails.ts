import type { MailToSend } from '../mail/mail-outbox.repository';

/**
 * The texts of the account mails. Links are built from PUBLIC_URL (never from a request's Host
 * header, which a client chooses: a forged one would send the victim's token to the attacker's
 * site). The token is in the fragment (`#token=`), which browsers do not send to servers, so it never
 * lands in the site's access log or a Referer header; the page there POSTs it to the API.
 */

/** Sign-up or a new address: the link that proves the user reads mail at `to`. */
export function verificationMail(to: string, publicUrl: string, token: string, ttlSeconds: number): MailToSend {
  return {
    to,
    subject: 'Confirm your email address',
    text: [
      'Confirm that this is your email address by opening this link:',
      '',
      `${publicUrl}/verify-email#token=${token}`,
      '',
      `It works once, for ${duration(ttlSeconds)}. Without a browser page for it,`,
      'send the token to the API: POST /auth/verify-email {"token": "<token>"}',
      '',
      `Token: ${token}`,
      '',
      'If you did not sign up or change your address, ignore this mail.',
    ].join('\n'),
  };
}

/** To the old address after an email change, without a link: the user learns of it if it was not them. */
export function emailChangedNotice(to: string, newEmail: string): MailToSend {
  return {
    to,
    subject: 'Your email address was changed',
    text: [
      `The email address of your account was changed to ${maskedEmail(newEmail)}.`,
      '',
      'If that was not you, reset your password and contact us.',
    ].join('\n'),
  };
}

/** A password reset link. */
export function passwordResetMail(to: string, publicUrl: string, token: string, ttlSeconds: number): MailToSend {
  return {
    to,
    subject: 'Reset your password',
    text: [
      'Someone (hopefully you) asked to reset the password of your account.',
      'To choose a new one, open:',
      '',
      `${publicUrl}/reset-password#token=${token}`,
      '',
      `It works once, for ${duration(ttlSeconds)}, and signs you out everywhere.`,
      'Without a browser page for it, send the token and a new password:',
      'POST /auth/password-reset/confirm',
      '{"token": "<token>", "password": "<new password>"}',
      '',
      `Token: ${token}`,
      '',
      'If you did not ask for this, ignore this mail: your password stays.',
    ].join('\n'),
  };
}

/** `ad***@example.com`: enough for the owner to recognise, not a whole address for a reader of the old inbox. */
export function maskedEmail(email: string): string {
  const at = email.lastIndexOf('@');
  return `${email.slice(0, Math.min(2, Math.max(at, 0)))}***${email.slice(at)}`;
}

function duration(seconds: number): string {
  if (seconds % 86_400 === 0) return `${seconds / 86_400} day${seconds === 86_400 ? '' : 's'}`;
  if (seconds % 3600 === 0) return `${seconds / 3600} hour${seconds === 3600 ? '' : 's'}`;
  return `${Math.round(seconds / 60)} minutes`;
}
