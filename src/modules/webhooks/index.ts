// Admin-only webhook routes under /api/v1/webhooks (in every AUTH_MODE), and the loop guard: a request
// sent by any instance's webhook dispatcher is refused, so no endpoint can be pointed back at the API.
import { Elysia, t } from 'elysia'
import { ForbiddenError } from '../../lib/errors'
import { errors } from '../../lib/schemas'
import type { Guard } from '../auth/guard'
import {
  Delivery,
  DeliveryQuery,
  RotateBody,
  TestResult,
  Webhook,
  WebhookCreate,
  WebhookParams,
  WebhookPatch,
  WebhookWithSecret,
} from './model'
import { USER_AGENT } from './sender'
import {
  createWebhook,
  deleteWebhook,
  getWebhook,
  listDeliveries,
  listWebhooks,
  patchWebhook,
  rotateSecret,
  sendTest,
  type WebhookDeps,
} from './service'

export const webhooksModule = (deps: WebhookDeps, guard: Guard) =>
  new Elysia({ name: 'webhooks', prefix: '/api/v1/webhooks', detail: { tags: ['webhooks'] } })
    .onRequest(({ request }) => {
      if (request.headers.get('user-agent') === USER_AGENT)
        throw new ForbiddenError(
          'Webhook deliveries cannot call this server: point the webhook at another service.',
        )
    })
    .use(guard.macro)
    .get('/', () => listWebhooks(deps), {
      auth: 'admin',
      response: { 200: t.Array(Webhook), ...errors },
      detail: { summary: 'List webhooks', description: 'Secrets are never listed.' },
    })
    .post('/', async ({ body, status }) => status(201, await createWebhook(deps, body)), {
      auth: 'admin',
      parse: 'json',
      body: WebhookCreate,
      response: { 201: WebhookWithSecret, ...errors },
      detail: {
        summary: 'Create a webhook',
        description:
          'Each event matching `channels` (as on the WebSocket) and `event_types` is POSTed to `url` as the exact WebSocket frame, signed per Standard Webhooks. The answer holds the secret (whsec_…), shown this once.',
      },
    })
    .get('/:id', ({ params }) => getWebhook(deps, params.id), {
      auth: 'admin',
      params: WebhookParams,
      response: { 200: Webhook, ...errors },
      detail: {
        summary: 'Get a webhook',
        description:
          'Its url, filters, status (active, paused, disabled and why) and secret rotation state; never the secret.',
      },
    })
    .patch('/:id', ({ params, body }) => patchWebhook(deps, params.id, body), {
      auth: 'admin',
      params: WebhookParams,
      parse: 'json',
      body: WebhookPatch,
      response: { 200: Webhook, ...errors },
      detail: {
        summary: 'Change a webhook: url, filters, description; pause or resume it',
        description:
          'status paused queues matching events without sending; active sends what waits, in order, and re-enables a disabled endpoint.',
      },
    })
    .delete(
      '/:id',
      async ({ params, status }) => {
        await deleteWebhook(deps, params.id)
        return status(204, undefined)
      },
      {
        auth: 'admin',
        params: WebhookParams,
        response: { 204: t.Void(), ...errors },
        detail: {
          summary: 'Delete a webhook and its delivery log',
          description:
            'Deliveries still pending for it are dropped; nothing more is sent to its url.',
        },
      },
    )
    .post('/:id/rotate', ({ params, body }) => rotateSecret(deps, params.id, body ?? {}), {
      auth: 'admin',
      params: WebhookParams,
      body: t.Optional(RotateBody),
      response: { 200: WebhookWithSecret, ...errors },
      detail: {
        summary: 'Rotate the secret',
        description:
          'Answers the new secret (shown this once). During overlap_seconds (24 h by default) every delivery carries two signatures, one per secret.',
      },
    })
    .post('/:id/test', ({ params }) => sendTest(deps, params.id), {
      auth: 'admin',
      params: WebhookParams,
      response: { 200: TestResult, ...errors },
      detail: {
        summary: 'Send a test delivery now',
        description:
          'A signed system_event with seq 0 and data.test true, sent at once whatever the status, logged among the deliveries, not retried.',
      },
    })
    .get(
      '/:id/deliveries',
      async ({ params, query, set }) => {
        const page = await listDeliveries(deps, params.id, query)
        set.headers['x-total-count'] = String(page.total)
        return page.items
      },
      {
        auth: 'admin',
        params: WebhookParams,
        query: DeliveryQuery,
        response: { 200: t.Array(Delivery), ...errors },
        detail: {
          summary: 'The delivery log, newest first',
          description: `Status, attempts, last error and response time of each delivery; the total count is in X-Total-Count.`,
        },
      },
    )
