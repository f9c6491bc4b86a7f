// Domain errors: each carries the HTTP status and a short code for the one error envelope.

export class AppError extends Error {
  /** Response headers that go with this error (Retry-After, WWW-Authenticate). */
  headers?: Record<string, string>
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message)
  }
}

export class NotFoundError extends AppError {
  constructor(entity: string, id: number | string) {
    super(404, 'not_found', `${entity} ${id} does not exist.`, { entity, id })
  }
}

/** A plain HTTP request on a WebSocket endpoint. */
export class UpgradeRequiredError extends AppError {
  constructor(path: string) {
    super(
      426,
      'upgrade_required',
      `${path} is a WebSocket endpoint: connect with a WebSocket client (ws://host${path}?channel=general).`,
    )
    this.headers = { upgrade: 'websocket' }
  }
}

/** Input that passed the schema but breaks a rule of ours; names the field. */
export class InvalidFieldError extends AppError {
  constructor(field: string, message: string) {
    super(422, 'validation_error', message, { field })
  }
}

/** A reference to a row that does not exist (a reading of an unknown sensor). */
export class UnknownReferenceError extends AppError {
  constructor(field: string, entity: string, id: number, hint: string) {
    super(422, 'unknown_reference', `${entity} ${id} does not exist (${field}): ${hint}`, {
      field,
      id,
    })
  }
}

export class ConflictError extends AppError {
  constructor(message: string, details?: Record<string, unknown>) {
    super(409, 'conflict', message, details)
  }
}

export class UnauthorizedError extends AppError {
  constructor(
    message = 'A valid bearer token is required: log in at POST /auth/login.',
    challenge = 'Bearer',
  ) {
    super(401, 'unauthorized', message)
    this.headers = { 'www-authenticate': challenge }
  }
}

export class ForbiddenError extends AppError {
  constructor(message: string) {
    super(403, 'forbidden', message)
  }
}

export class UnavailableError extends AppError {
  constructor(message: string) {
    super(503, 'unavailable', message)
  }
}
