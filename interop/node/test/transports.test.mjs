// MQTT.js over ws:// and wss:// against roost listeners configured in a file.
// Certificates are made at test time with the openssl command.
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { startBroker } from '../lib/broker.mjs'
import { closeAll, connect, publish, subscribe, unique, withBrokerLog } from '../lib/client.mjs'

function openssl (...args) {
  execFileSync('openssl', args, { stdio: 'ignore', timeout: 60_000 })
}

/** A CA and a `localhost` server certificate in `dir`. */
function makeCertificates (dir) {
  const file = (name) => path.join(dir, name)
  openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-keyout', file('ca.key'), '-out', file('ca.crt'), '-subj', '/CN=Roost Node CA', '-days', '2',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign')
  openssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-keyout', file('server.key'), '-out', file('server.csr'), '-subj', '/CN=localhost')
  writeFileSync(file('server.ext'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n' +
    'keyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n')
  openssl('x509', '-req', '-in', file('server.csr'), '-CA', file('ca.crt'), '-CAkey', file('ca.key'),
    '-CAcreateserial', '-out', file('server.crt'), '-days', '2', '-extfile', file('server.ext'))
  return { ca: file('ca.crt'), cert: file('server.crt'), key: file('server.key') }
}

const versions = [
  { protocolVersion: 5, name: 'MQTT 5' },
  { protocolVersion: 4, name: 'MQTT 3.1.1' }
]

describe('MQTT.js over WebSocket and WSS', () => {
  let broker
  let dir
  let certs
  const clients = []
  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'roost-node-'))
    certs = makeCertificates(dir)
    const config = path.join(dir, 'roost.toml')
    writeFileSync(config, [
      '[[listeners]]', 'kind = "ws"', 'bind = "127.0.0.1:0"',
      '[[listeners]]', 'kind = "wss"', 'bind = "127.0.0.1:0"',
      `tls = { cert_file = "${certs.cert}", key_file = "${certs.key}" }`,
      '[[listeners]]', 'kind = "tcp"', 'bind = "127.0.0.1:0"', ''
    ].join('\n'))
    broker = await startBroker('-c', config)
  })
  after(async () => {
    await closeAll(clients)
    await broker?.stop()
    if (dir) rmSync(dir, { recursive: true, force: true })
  })

  test('the broker announces ws:// and wss:// listeners with the /mqtt path', () => {
    assert.match(broker.listeners.ws.url, /^ws:\/\/127\.0\.0\.1:\d+\/mqtt$/)
    assert.match(broker.listeners.wss.url, /^wss:\/\/127\.0\.0\.1:\d+\/mqtt$/)
  })

  for (const { protocolVersion, name } of versions) {
    test(`${name}: a ws:// client and a TCP client exchange messages both ways`, () => withBrokerLog(broker, async () => {
      const topic = `roost-it/${unique('js-ws')}`
      const ws = await connect({ url: broker.listeners.ws.url }, { protocolVersion })
      const tcp = await connect(broker, { protocolVersion })
      clients.push(ws.client, tcp.client)
      await subscribe(ws.client, `${topic}/down`, { qos: 1 })
      await subscribe(tcp.client, `${topic}/up`, { qos: 1 })
      await publish(tcp.client, `${topic}/down`, 'to the browser', { qos: 1 })
      await publish(ws.client, `${topic}/up`, 'from the browser', { qos: 1 })
      assert.equal((await ws.inbox.next()).payload.toString(), 'to the browser')
      assert.equal((await tcp.inbox.next()).payload.toString(), 'from the browser')
    }))

    test(`${name}: a wss:// client verifies the server certificate and exchanges messages`, () => withBrokerLog(broker, async () => {
      const topic = `roost-it/${unique('js-wss')}`
      const url = `wss://localhost:${broker.listeners.wss.port}/mqtt`
      const wss = await connect({ url }, { protocolVersion, ca: readFileSync(certs.ca), rejectUnauthorized: true })
      clients.push(wss.client)
      await subscribe(wss.client, topic, { qos: 2 })
      const payload = Buffer.alloc(200_000, 7) // spans many WebSocket frames and TLS records
      await publish(wss.client, topic, payload, { qos: 2 })
      const message = await wss.inbox.next()
      assert.equal(message.topic, topic)
      assert.deepEqual(message.payload, payload)
    }))
  }

  test('a wss:// client that does not trust the CA is refused', async () => {
    const url = `wss://localhost:${broker.listeners.wss.port}/mqtt`
    await assert.rejects(connect({ url }, { rejectUnauthorized: true }))
  })
})
