// Devices over MQTT: the documented Mosquitto config (docs/mosquitto/) on a private broker, with a
// device logged in as its sensor id with its device key: it may publish to its own sensor's topic only.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test'
import { chmodSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import mqtt from 'mqtt'
import { adminToken, bearer } from './auth-kit'
import { startTestServer, tempDir, until, type TestServer } from './helpers'
import { freePort, mqttReady } from './mqtt-kit'

setDefaultTimeout(30_000)

const DOCS = join(import.meta.dir, '..', 'docs', 'mosquitto')
const SERVER_PASSWORD = 'vigia-broker-password'

function passwd(file: string, user: string, password: string, create = false) {
  const run = Bun.spawnSync([
    'mosquitto_passwd',
    ...(create ? ['-c'] : []),
    '-b',
    file,
    user,
    password,
  ])
  if (run.exitCode !== 0) throw new Error(`mosquitto_passwd failed: ${run.stderr.toString()}`)
}

describe('a device key on MQTT through the documented Mosquitto ACL', () => {
  let dir: string
  let broker: ReturnType<typeof Bun.spawn>
  let port: number
  let server: TestServer
  let admin: Record<string, string>
  const passwords = () => join(dir, 'vigia.passwd')

  beforeAll(async () => {
    dir = tempDir('vigia-mosquitto-acl-')
    // Mosquitto started as root drops to its own user, which must still read these files.
    chmodSync(dir, 0o755)
    port = freePort()
    const conf = readFileSync(join(DOCS, 'mosquitto.conf'), 'utf8')
      .replace(/^listener 1883$/m, `listener ${port} 127.0.0.1`)
      .replace('/etc/mosquitto/vigia.passwd', passwords())
      .replace('/etc/mosquitto/vigia.acl', join(dir, 'vigia.acl'))
    expect(conf).toContain(`listener ${port} 127.0.0.1`)
    writeFileSync(join(dir, 'mosquitto.conf'), conf)
    writeFileSync(join(dir, 'vigia.acl'), readFileSync(join(DOCS, 'vigia.acl')))
    passwd(passwords(), 'vigia', SERVER_PASSWORD, true)
    for (const file of ['mosquitto.conf', 'vigia.acl', 'vigia.passwd'])
      chmodSync(join(dir, file), 0o644)
    broker = Bun.spawn(['mosquitto', '-c', join(dir, 'mosquitto.conf')], {
      stdout: 'ignore',
      stderr: 'ignore',
    })
    server = await startTestServer({
      MQTT_URL: `mqtt://vigia:${SERVER_PASSWORD}@127.0.0.1:${port}`,
      MQTT_CLIENT_ID: `vigia-acl-${crypto.randomUUID().slice(0, 8)}`,
      ADMIN_PASSWORD: 'admin-password-for-tests',
    })
    await mqttReady(server)
    admin = bearer(await adminToken(server))
  })
  afterAll(async () => {
    await server?.stop()
    broker?.kill('SIGTERM')
    await broker?.exited
    rmSync(dir, { recursive: true, force: true })
  })

  const device = (username: string, password: string) =>
    mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, {
      protocolVersion: 5,
      username,
      password,
      reconnectPeriod: 0,
      connectTimeout: 3000,
    })

  test('the device publishes its own readings; the broker drops what it sends to another sensor’s topic', async () => {
    const sensor = async () =>
      (await server.api('POST', '/api/v1/sensors', { tipo: 't', modelo: 'm' }, admin)).body
        .id as number
    const mine = await sensor()
    const other = await sensor()
    const issued = await server.api('POST', `/api/v1/sensors/${mine}/keys`, { name: 'mqtt' }, admin)
    expect(issued.status).toBe(201)
    passwd(passwords(), String(mine), issued.body.key)
    // Mosquitto reads its password and ACL files again on SIGHUP.
    broker.kill('SIGHUP')
    const watcher = await server.ws('/api/v1/ws', { channel: 'readings' })
    await watcher.connected()

    const client = await until(
      async () =>
        !!(await device(String(mine), issued.body.key)
          .then((c) => (c.end(), true))
          .catch(() => false)),
      'the broker to accept the new device',
    ).then(() => device(String(mine), issued.body.key))
    const denied = await client
      .publishAsync(`sensors/${other}/readings`, JSON.stringify({ temperatura: 99 }), { qos: 1 })
      .then(
        () => 0,
        (error: { code?: number }) => error.code,
      )
    // PUBACK reason code 135: not authorized.
    expect(denied).toBe(135)
    await client.publishAsync(`sensors/${mine}/readings`, JSON.stringify({ temperatura: 21.5 }), {
      qos: 1,
    })
    const event = await watcher.event((m) => m.entity_type === 'reading')
    expect(event.data).toMatchObject({ sensor_id: mine, temperatura: 21.5 })
    // Published before the allowed one, on one connection: had the broker passed it on, it would be in by now.
    expect(watcher.receivedEvents().filter((m) => m.data?.sensor_id === other)).toEqual([])
    expect((await server.api('GET', `/api/v1/readings?sensor_id=${other}`)).body).toEqual([])
    await client.endAsync()
    watcher.close()
  })

  test('a wrong key, another device’s user name, or no login at all is refused by the broker', async () => {
    const mine = (await server.api('POST', '/api/v1/sensors', { tipo: 't', modelo: 'm' }, admin))
      .body.id
    const issued = await server.api('POST', `/api/v1/sensors/${mine}/keys`, undefined, admin)
    passwd(passwords(), String(mine), issued.body.key)
    broker.kill('SIGHUP')
    await until(
      async () =>
        !!(await device(String(mine), issued.body.key)
          .then((c) => (c.end(), true))
          .catch(() => false)),
      'the broker to accept the new device',
    )
    await expect(device(String(mine), 'vdk_wrong')).rejects.toThrow()
    await expect(device(String(mine + 1), issued.body.key)).rejects.toThrow()
    await expect(
      mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { protocolVersion: 5, reconnectPeriod: 0 }),
    ).rejects.toThrow()
  })
})
