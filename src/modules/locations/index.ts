// REST routes for locations under /api/v1/locations.
import { Elysia, t } from 'elysia'
import type { Services } from '../../context'
import { errors, IdParams } from '../../lib/schemas'
import { Location, LocationCreate, LocationPatch, LocationQuery } from './model'
import {
  createLocation,
  deleteLocation,
  getLocation,
  listLocations,
  patchLocation,
  replaceLocation,
} from './service'

export const locationsModule = (services: Services) =>
  new Elysia({ name: 'locations', prefix: '/api/v1/locations', detail: { tags: ['locations'] } })
    .get(
      '/',
      async ({ query, set }) => {
        const page = await listLocations(services, query)
        set.headers['x-total-count'] = String(page.total)
        return page.items
      },
      {
        query: LocationQuery,
        response: { 200: t.Array(Location), ...errors },
        detail: { summary: 'List locations', description: 'The total count is in X-Total-Count.' },
      },
    )
    .get('/:id', ({ params }) => getLocation(services, params.id), {
      params: IdParams,
      response: { 200: Location, ...errors },
      detail: {
        summary: 'Get a location',
        description: 'The location with this id; 404 when there is none.',
      },
    })
    .post('/', async ({ body, status }) => status(201, await createLocation(services, body)), {
      parse: 'json',
      body: LocationCreate,
      response: { 201: Location, ...errors },
      detail: {
        summary: 'Create a location',
        description: 'Emits `created` on locations, locations:<id>, general.',
      },
    })
    .put('/:id', ({ params, body }) => replaceLocation(services, params.id, body), {
      params: IdParams,
      parse: 'json',
      body: LocationCreate,
      response: { 200: Location, ...errors },
      detail: {
        summary: 'Replace a location',
        description:
          'Every field is set from the body (a field left out becomes null). Emits `updated` on locations, locations:<id>, general.',
      },
    })
    .patch('/:id', ({ params, body }) => patchLocation(services, params.id, body), {
      params: IdParams,
      parse: 'json',
      body: LocationPatch,
      response: { 200: Location, ...errors },
      detail: {
        summary: 'Update some fields of a location',
        description:
          'Only the fields in the body change. Emits `updated` on locations, locations:<id>, general.',
      },
    })
    .delete(
      '/:id',
      async ({ params, status }) => {
        await deleteLocation(services, params.id)
        return status(204, undefined)
      },
      {
        params: IdParams,
        response: { 204: t.Void(), ...errors },
        detail: {
          summary: 'Delete a location',
          description: 'Its sensors stay, detached (each gets an `updated` event).',
        },
      },
    )
