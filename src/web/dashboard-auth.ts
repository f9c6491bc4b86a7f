// The dashboard's access panel: under AUTH_MODE=required (or when a token expires or is revoked) it asks for
// a user and password (POST /auth/login) or a pasted token, instead of leaving the page waiting.
import { LoginError, login } from '../client'
import { byId, errorText } from './dom'
import { setSessionToken } from './session'

/** Shows the access panel with why it is needed; `onToken` gets the token the person gives. */
export function askForToken(reason: string, onToken: (token: string) => void) {
  const panel = byId('login')
  const error = byId('login-error')
  byId('login-reason').textContent = reason
  panel.hidden = false
  error.hidden = true
  const done = (token: string) => {
    setSessionToken(token)
    panel.hidden = true
    onToken(token)
  }
  byId<HTMLFormElement>('login-form').onsubmit = async (e) => {
    e.preventDefault()
    const user = byId<HTMLInputElement>('login-user').value.trim()
    const password = byId<HTMLInputElement>('login-password').value
    if (!user || !password) return fail('Escribe el usuario y la contraseña.')
    try {
      const answer = await login(location.origin, user, password)
      byId<HTMLInputElement>('login-password').value = ''
      done(answer.access_token)
    } catch (err) {
      fail(
        err instanceof LoginError && err.status === 401
          ? 'Usuario o contraseña incorrectos.'
          : err instanceof LoginError && err.status === 429
            ? 'Demasiados intentos: espera un momento y vuelve a probar.'
            : `No se pudo iniciar sesión: ${errorText(err)}`,
      )
    }
  }
  byId<HTMLFormElement>('token-form').onsubmit = (e) => {
    e.preventDefault()
    const token = byId<HTMLInputElement>('login-token').value.trim()
    if (!token) return fail('Pega un token (el access_token de POST /auth/login).')
    byId<HTMLInputElement>('login-token').value = ''
    done(token)
  }
  function fail(text: string) {
    error.textContent = text
    error.hidden = false
  }
}
