// Liveness schemas: the per-type limit of silence (sensor types' `offline_after`).
import { t } from 'elysia'
import { OfflineAfter } from '../sensors/model'

export const TypeLiveness = t.Object({
  tipo: t.String({ examples: ['temperatura'] }),
  offline_after: t.Integer({
    description: 'Seconds of silence before a sensor of this tipo is offline; 0 = never',
    examples: [300],
  }),
  created_at: t.String({ format: 'date-time' }),
  updated_at: t.String({ format: 'date-time' }),
})
export type TypeLiveness = typeof TypeLiveness.static

export const TypeLivenessPut = t.Object(
  { offline_after: OfflineAfter },
  { examples: [{ offline_after: 300 }] },
)
export type TypeLivenessPut = typeof TypeLivenessPut.static
