// User schemas: name, role, the channels the user may join, and a password that is never shown.
import { t } from 'elysia'
import { Id, OneOf, pagination } from '../../lib/schemas'
import { CHANNEL_PATTERN, ROLES } from '../auth/permissions'

export const Username = t.String({
  pattern: '^[A-Za-z0-9._@-]{1,64}$',
  description: '1 to 64 letters, digits or . _ @ -',
  examples: ['ana'],
})
export const Password = t.String({
  minLength: 8,
  maxLength: 256,
  description: '8 to 256 characters; stored only as an argon2id hash',
  examples: ['correct horse battery staple'],
})
const roleDoc = {
  description: 'admin: everything; operator: read and write data; viewer: read only',
  examples: ['operator'],
}
export const Role = OneOf(ROLES, roleDoc)
export const Channels = t.Array(t.String({ pattern: CHANNEL_PATTERN, examples: ['sensors:*'] }), {
  maxItems: 100,
  description:
    'WebSocket channels the user may join: `*` for all, a channel (`general`, `sensors:5`) or all sub-channels of one (`sensors:*`)',
  examples: [['*'], ['sensors', 'sensors:*', 'readings:5']],
})

export const User = t.Object({
  id: t.Integer({ examples: [1] }),
  username: t.String({ examples: ['ana'] }),
  role: Role,
  channels: t.Array(t.String()),
  created_at: t.String({ format: 'date-time' }),
  updated_at: t.String({ format: 'date-time' }),
})
export type User = typeof User.static

export const UserCreate = t.Object({
  username: Username,
  password: Password,
  role: t.Optional(
    OneOf(ROLES, { ...roleDoc, description: `${roleDoc.description}; viewer when omitted` }),
  ),
  channels: t.Optional(Channels),
})
export type UserCreate = typeof UserCreate.static

export const UserPatch = t.Partial(
  t.Object({ username: Username, password: Password, role: Role, channels: Channels }),
  {
    minProperties: 1,
  },
)
export type UserPatch = typeof UserPatch.static

export const UserQuery = t.Object({ ...pagination, role: t.Optional(Role) })
export type UserQuery = typeof UserQuery.static

export const UserParams = t.Object({ id: Id })
