// Spanish display texts for what the API names in English codes (anomaly severities, kinds, rules, statuses,
// forecast models): the API keeps its codes and its English `message`; the pages show these instead.
import type { Anomaly, ClientState, Prediction } from '../client'

export const SEVERITY_TEXT: Record<string, string> = {
  warning: 'aviso',
  minor: 'leve',
  major: 'grave',
  critical: 'crítica',
}

export const STATUS_TEXT: Record<string, string> = {
  open: 'abierta',
  acknowledged: 'reconocida',
  resolved: 'resuelta',
}

export const RULE_TEXT: Record<string, string> = {
  threshold: 'umbral',
  statistical: 'estadística',
  liveness: 'actividad',
  manual: 'manual',
}

export const KIND_TEXT: Record<string, string> = {
  above_max: 'por encima del máximo',
  below_min: 'por debajo del mínimo',
  spike: 'pico',
  stuck: 'valor atascado',
  drift: 'deriva',
  offline: 'sensor sin datos',
  webhook_disabled: 'webhook desactivado',
}

export const MODEL_TEXT: Record<string, string> = {
  naive: 'ingenuo (último valor)',
  holt: 'Holt (nivel y tendencia)',
  holt_winters: 'Holt-Winters (con estación diaria)',
}

export const PREDICTION_STATUS_TEXT: Record<string, string> = {
  pending: 'pendiente',
  completed: 'completada',
  failed: 'fallida',
}

const num = (n: number) => String(Math.round(n * 100) / 100)
const range = (a: Anomaly) =>
  a.expected_min !== null && a.expected_max !== null
    ? ` (se esperaba entre ${num(a.expected_min)} y ${num(a.expected_max)})`
    : ''

/** A code's Spanish text; an unknown code is shown as it is. */
export const say = (table: Record<string, string>, code: string | null | undefined) =>
  code ? (table[code] ?? code) : ''

/**
 * What an anomaly is about, in Spanish. The detector's own anomalies (a `kind`) are described from their
 * fields; a manual one shows the message its author wrote.
 */
export function anomalyText(a: Anomaly): string {
  const v = `${a.variable} = ${num(a.value)}`
  switch (a.kind) {
    case 'above_max':
      return `${v}: por encima del máximo ${a.expected_max === null ? '' : num(a.expected_max)}`.trim()
    case 'below_min':
      return `${v}: por debajo del mínimo ${a.expected_min === null ? '' : num(a.expected_min)}`.trim()
    case 'spike':
      return `${v}: pico fuera de lo esperado${range(a)}`
    case 'stuck':
      return `${v}: el valor no cambia desde hace ${a.count > 1 ? `${a.count} avisos` : 'varias lecturas'}`
    case 'drift':
      return `${v}: deriva respecto a lo habitual a esta hora${range(a)}`
    case 'offline':
      return `Sin lecturas desde hace ${num(a.value)} s${a.expected_max === null ? '' : ` (límite ${num(a.expected_max)} s)`}`
    case null:
    case undefined:
      return a.message ? `${v} · ${a.message}` : `${v} · ${say(RULE_TEXT, a.rule)}`
    default:
      return `${v}: ${say(KIND_TEXT, a.kind)}`
  }
}

/** The title of an anomaly: severity and kind (or rule), in Spanish. */
export function anomalyTitle(a: Anomaly): string {
  return `${say(SEVERITY_TEXT, a.severity)} · ${a.kind ? say(KIND_TEXT, a.kind) : say(RULE_TEXT, a.rule)}`
}

/** One line about a prediction, in Spanish. */
export function predictionText(p: Prediction): string {
  const head = `Pronóstico #${p.id} de ${p.variable} a ${p.horizon_minutes} min`
  if (p.status === 'failed') return `${head}: fallido`
  if (p.status === 'pending') return `${head}: pendiente`
  return `${head} (modelo ${say(MODEL_TEXT, p.model) || 'desconocido'}): ${p.forecast?.length ?? 0} puntos`
}

/** The live pages' connection state (the test client says "Conectado" instead of "En vivo"). */
export const LIVE_STATE_TEXT: Record<ClientState, string> = {
  idle: 'Desconectado',
  connecting: 'Conectando…',
  open: 'En vivo',
  reconnecting: 'Reconectando…',
  closed: 'Desconectado',
}
