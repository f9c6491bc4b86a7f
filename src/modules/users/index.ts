// Admin-only user management under /api/v1/users (in every AUTH_MODE).
import { Elysia, t } from 'elysia'
import type { AppContext } from '../../context'
import { errors, IdParams } from '../../lib/schemas'
import type { Guard } from '../auth/guard'
import { User, UserCreate, UserPatch, UserQuery } from './model'
import { createUser, deleteUser, getUser, listUsers, patchUser } from './service'

export const usersModule = (services: AppContext, guard: Guard) =>
  new Elysia({ name: 'users', prefix: '/api/v1/users', detail: { tags: ['users'] } })
    .use(guard.macro)
    .get(
      '/',
      async ({ query, set }) => {
        const page = await listUsers(services, query)
        set.headers['x-total-count'] = String(page.total)
        return page.items
      },
      {
        auth: 'admin',
        query: UserQuery,
        response: { 200: t.Array(User), ...errors },
        detail: { summary: 'List users', description: 'The total count is in X-Total-Count.' },
      },
    )
    .get('/:id', ({ params }) => getUser(services, params.id), {
      auth: 'admin',
      params: IdParams,
      response: { 200: User, ...errors },
      detail: {
        summary: 'Get a user',
        description: 'The user with this id (never its password); 404 when there is none.',
      },
    })
    .post('/', async ({ body, status }) => status(201, await createUser(services, body)), {
      auth: 'admin',
      parse: 'json',
      body: UserCreate,
      response: { 201: User, ...errors },
      detail: {
        summary: 'Create a user',
        description: 'role defaults to viewer and channels to ["*"]. A taken username: 409.',
      },
    })
    .patch('/:id', ({ params, body }) => patchUser(services, params.id, body), {
      auth: 'admin',
      params: IdParams,
      parse: 'json',
      body: UserPatch,
      response: { 200: User, ...errors },
      detail: {
        summary: 'Change a user (password, role, channels, username)',
        description:
          'A new password or username revokes every token the user holds (their open WebSockets close with 4401); a new role or channels apply to tokens issued from now on. Demoting the last admin: 409.',
      },
    })
    .delete(
      '/:id',
      async ({ params, status }) => {
        await deleteUser(services, params.id)
        return status(204, undefined)
      },
      {
        auth: 'admin',
        params: IdParams,
        response: { 204: t.Void(), ...errors },
        detail: {
          summary: 'Delete a user',
          description: 'Revokes every token of theirs. Deleting the last admin: 409.',
        },
      },
    )
