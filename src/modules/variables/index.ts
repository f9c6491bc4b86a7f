// REST routes for variables under /api/v1/variables: every measurement name in use, with its unit.
import { Elysia, t } from 'elysia'
import type { Services } from '../../context'
import { checkBody, requireObject } from '../../lib/json-body'
import { errors } from '../../lib/schemas'
import { Variable, VariableParams, VariablePut } from './model'
import { listVariables, putVariable } from './service'

export const variablesModule = (services: Services) =>
  new Elysia({ name: 'variables', prefix: '/api/v1/variables', detail: { tags: ['variables'] } })
    .get('/', () => listVariables(services), {
      response: { 200: t.Array(Variable), ...errors },
      detail: {
        summary: 'List the variables in use, with unit and description',
        description:
          'Every measurement name a reading has carried (registered on first appearance, unit and description null until set), plus any set with PUT; by name. temperatura (°C) and humedad (%) come described.',
      },
    })
    .put(
      '/:name',
      async ({ params, body, status }) => {
        const { variable, created } = await putVariable(services, params.name, body)
        return status(created ? 201 : 200, variable)
      },
      {
        params: VariableParams,
        // An all-optional object: Elysia's schema step would take 11 or [] for {} and clear both fields.
        parse: 'json',
        transform: checkBody((body) => requireObject(body, '{"unit":"ppm","description":"CO2"}')),
        body: VariablePut,
        response: { 200: Variable, 201: Variable, ...errors },
        detail: {
          summary: 'Set the unit and description of a variable',
          description:
            'The whole description (a field left out is cleared). A name no reading has used yet is registered (201). Emits a system_event on general with the variable. Example: PUT /api/v1/variables/co2 {"unit":"ppm","description":"Dióxido de carbono"}.',
        },
      },
    )
