// Login schemas: the JSON body and the OAuth2 password-flow form, and the token answer.
import { t } from 'elysia'
import { OneOf } from '../../lib/schemas'
import { ROLES } from './permissions'

export const LoginBody = t.Object(
  {
    username: t.String({ minLength: 1, maxLength: 64, examples: ['admin'] }),
    password: t.String({
      minLength: 1,
      maxLength: 256,
      examples: ['correct horse battery staple'],
    }),
    grant_type: t.Optional(
      t.Literal('password', { description: 'OAuth2 password flow; only "password" is accepted' }),
    ),
  },
  {
    description:
      'JSON, or application/x-www-form-urlencoded as in the OAuth2 password flow (other form fields such as scope or client_id are ignored)',
  },
)
export type LoginBody = typeof LoginBody.static

export const TokenResponse = t.Object({
  access_token: t.String({
    description: 'Send as Authorization: Bearer <token>, or ?token= on /api/v1/ws/secure',
  }),
  token_type: t.Literal('bearer'),
  expires_in: t.Integer({ description: 'Seconds until the token expires', examples: [3600] }),
})
export type TokenResponse = typeof TokenResponse.static

export const Me = t.Object({
  username: t.String(),
  role: OneOf(ROLES),
  channels: t.Array(t.String()),
  expires_at: t.String({ format: 'date-time' }),
})
export type Me = typeof Me.static
