// The fleet page's session and device keys: a login dialog, and per sensor (for operators and admins) a
// dialog that lists its device keys, issues one and shows it once, and revokes them.
import { LoginError, type Api, type Sensor } from '../client'
import { byId, clock, el, errorText } from './dom'
import { canWrite, logIn, setSessionToken, whoAmI, type Me } from './session'

/** Asks for a username and password; resolves with the token, or undefined when cancelled. */
export function askLogin(): Promise<string | undefined> {
  const dialog = byId<HTMLDialogElement>('login')
  const form = byId<HTMLFormElement>('login-form')
  const error = byId('login-error')
  error.hidden = true
  return new Promise((resolve) => {
    const submit = async (event: SubmitEvent) => {
      event.preventDefault()
      if ((event.submitter as HTMLButtonElement | null)?.value === 'cancel') return done(undefined)
      try {
        const token = await logIn(
          byId<HTMLInputElement>('username').value,
          byId<HTMLInputElement>('password').value,
        )
        done(token)
      } catch (e) {
        error.textContent = e instanceof LoginError ? e.message : errorText(e)
        error.hidden = false
      }
    }
    const done = (token: string | undefined) => {
      form.removeEventListener('submit', submit)
      byId<HTMLInputElement>('password').value = ''
      dialog.close()
      resolve(token)
    }
    form.addEventListener('submit', submit)
    dialog.showModal()
  })
}

/** The header's session box: who is logged in, or a login button; `changed` runs after each change. */
export async function showSession(api: Api, changed: (me: Me | undefined) => void) {
  const me = await whoAmI(api)
  document.body.classList.toggle('can-write', canWrite(me))
  const box = byId('session')
  if (me) {
    const out = el('button', { id: 'logout' }, 'Salir')
    out.addEventListener('click', () => {
      setSessionToken(undefined)
      void showSession(api, changed)
    })
    box.replaceChildren(`${me.username} (${me.role}) `, out)
  } else {
    const login = el('button', { id: 'login-open' }, 'Iniciar sesión')
    login.addEventListener('click', async () => {
      if (await askLogin()) void showSession(api, changed)
    })
    box.replaceChildren(login)
  }
  changed(me)
}

/** The device keys dialog of one sensor. */
export class KeysDialog {
  private readonly dialog = byId<HTMLDialogElement>('keys')
  private sensor: Sensor | undefined

  constructor(private readonly api: Api) {
    byId('issue-form').addEventListener('submit', (event) => {
      event.preventDefault()
      void this.issue()
    })
    byId('copy-key').addEventListener('click', () => {
      const input = byId<HTMLInputElement>('issued-key')
      input.select()
      void navigator.clipboard?.writeText(input.value).catch(() => document.execCommand('copy'))
    })
    // The key is shown once: gone from the page when the dialog closes (the button, or Escape, whose
    // `close` event comes a task later).
    const forget = () => {
      byId<HTMLInputElement>('issued-key').value = ''
      byId('issued').hidden = true
    }
    byId('keys-close').addEventListener('click', () => {
      forget()
      this.dialog.close()
    })
    this.dialog.addEventListener('close', forget)
  }

  async open(sensor: Sensor) {
    this.sensor = sensor
    this.dialog.dataset.sensorId = String(sensor.id)
    byId('keys-title').textContent =
      `Claves de dispositivo · #${sensor.id} ${sensor.nombre ?? sensor.tipo}`
    byId('issued').hidden = true
    byId('keys-error').hidden = true
    byId<HTMLInputElement>('key-name').value = ''
    byId('key-list').replaceChildren()
    this.dialog.showModal()
    await this.list()
  }

  private fail(error: unknown) {
    const box = byId('keys-error')
    box.textContent = errorText(error)
    box.hidden = false
  }

  private async list() {
    const id = this.sensor!.id
    const { data, error } = await this.api.api.v1.sensors({ id }).keys.get()
    if (!data) return this.fail(error)
    byId('key-list').replaceChildren(
      ...(data.length
        ? data.map((key) => {
            const revoke = el(
              'button',
              { class: 'revoke', disabled: key.revoked_at !== null },
              'Revocar',
            )
            revoke.addEventListener('click', () => this.revoke(key.id))
            return el(
              'tr',
              { 'data-key-id': key.id, 'data-revoked': String(key.revoked_at !== null) },
              el('td', {}, el('code', {}, `${key.prefix}…`)),
              el('td', {}, key.name ?? ''),
              el('td', {}, clock(key.created_at)),
              el(
                'td',
                {},
                key.revoked_at ? 'revocada' : key.last_used_at ? clock(key.last_used_at) : 'nunca',
              ),
              el('td', {}, revoke),
            )
          })
        : [el('tr', {}, el('td', { colspan: 5, class: 'muted' }, 'Ninguna clave todavía.'))]),
    )
  }

  private async issue() {
    const id = this.sensor!.id
    const name = byId<HTMLInputElement>('key-name').value.trim()
    const { data, error } = await this.api.api.v1.sensors({ id }).keys.post(name ? { name } : {})
    if (!data) return this.fail(error)
    byId('keys-error').hidden = true
    byId<HTMLInputElement>('issued-key').value = data.key
    byId('issued').hidden = false
    await this.list()
  }

  private async revoke(keyId: number) {
    const id = this.sensor!.id
    const { error } = await this.api.api.v1.sensors({ id }).keys({ keyId }).delete()
    if (error) return this.fail(error)
    await this.list()
  }
}
