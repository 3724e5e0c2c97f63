// Cluster mode (docs/cluster.md) with MQTT.js: three `roost --cluster-redis`
// nodes on a private redis-server, clients on different nodes. Routes reach
// the other nodes through the route log (milliseconds): each test publishes
// probes until the remote subscriber got one (bounded), never sleeps and hopes.
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdtempSync } from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { startBroker } from '../lib/broker.mjs'
import mqtt from 'mqtt'
import { Inbox, TIMEOUT_MS, closeAll, connect, publish, subscribe, unique, within } from '../lib/client.mjs'

const ROUTE_WAIT_MS = 10_000

/** A free loopback port (closed again before redis-server takes it). */
function freePort () {
  return new Promise((resolve, reject) => {
    const server = net.createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address()
      server.close(() => resolve(port))
    })
  })
}

/** PING until PONG, bounded. */
async function untilPong (port) {
  const deadline = Date.now() + TIMEOUT_MS
  for (;;) {
    const pong = await new Promise((resolve) => {
      const socket = net.connect(port, '127.0.0.1', () => socket.write('PING\r\n'))
      socket.once('data', (data) => { socket.destroy(); resolve(data.toString().startsWith('+PONG')) })
      socket.once('error', () => resolve(false))
    })
    if (pong) return
    if (Date.now() > deadline) throw new Error('redis-server did not answer PING')
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

async function startRedis () {
  const port = await freePort()
  const dir = mkdtempSync(path.join(os.tmpdir(), 'roost-redis-'))
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '',
    '--appendonly', 'no', '--dir', dir], { stdio: 'ignore' })
  await untilPong(port)
  return { url: `redis://127.0.0.1:${port}`, stop: () => child.kill('SIGKILL') }
}

/**
 * Whether `sub` has a message within `ms`, looking at its inbox's queue
 * (`inbox.next()` under a timeout would leave a waiter behind that takes
 * the next message).
 */
async function arrives (sub, ms) {
  const deadline = Date.now() + ms
  while (sub.inbox.queue.length === 0) {
    if (Date.now() > deadline) return false
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
  return true
}

/** Probes `topic` from `pub` until `sub` got one, then drains the probes. */
async function waitForRoute (pub, topic, sub) {
  const deadline = Date.now() + ROUTE_WAIT_MS
  for (;;) {
    assert.ok(Date.now() < deadline, `route to ${topic} not seen`)
    await publish(pub.client, topic, 'probe')
    if (await arrives(sub, 100)) break
  }
  await drain(sub)
}

/** Drops what `sub` received (probes), until nothing more comes for 300 ms. */
async function drain (sub) {
  while (await arrives(sub, 300)) sub.inbox.queue.length = 0
}

describe('MQTT.js across cluster nodes', () => {
  let redis
  let nodes = []
  const clients = []
  const track = (c) => { clients.push(c.client); return c }

  before(async () => {
    redis = await startRedis()
    const run = unique('js')
    for (const name of ['a', 'b', 'c']) {
      nodes.push(await startBroker('--store', 'memory', '--cluster-redis', redis.url, '--node-id', `${run}-${name}`))
    }
  })
  after(async () => {
    await closeAll(clients)
    await Promise.allSettled(nodes.map((n) => n.stop()))
    nodes = []
    redis?.stop()
  })

  for (const qos of [0, 1, 2]) {
    test(`QoS ${qos} from node A reaches a + subscriber on B and a # subscriber on C`, async () => {
      const [a, b, c] = nodes
      const base = `roost-it/${unique('jsq')}`
      const plus = track(await connect(b))
      await subscribe(plus.client, `${base}/+/x`, { qos: 2 })
      const hash = track(await connect(c))
      await subscribe(hash.client, `${base}/#`, { qos: 2 })
      const pub = track(await connect(a))
      await waitForRoute(pub, `${base}/p/x`, plus)
      await waitForRoute(pub, `${base}/p/x`, hash)
      await drain(plus)
      await publish(pub.client, `${base}/1/x`, `q${qos}`, { qos })
      for (const sub of [plus, hash]) {
        const got = await sub.inbox.next()
        assert.equal(got.topic, `${base}/1/x`)
        assert.equal(got.payload.toString(), `q${qos}`)
        assert.equal(got.packet.qos, qos)
      }
    })
  }

  test('v5: the remote subscriber gets its subscription identifier and retain-as-published', async () => {
    const [a, b] = nodes
    const topic = `roost-it/${unique('jsp')}/t`
    const sub = track(await connect(b))
    await subscribe(sub.client, topic, { qos: 1, rap: true, properties: { subscriptionIdentifier: 42 } })
    const pub = track(await connect(a))
    await waitForRoute(pub, topic, sub)
    await publish(pub.client, topic, 'kept', { qos: 1, retain: true })
    const got = await sub.inbox.next()
    assert.equal(got.payload.toString(), 'kept')
    assert.equal(got.packet.retain, true)
    assert.deepEqual([got.packet.properties?.subscriptionIdentifier].flat(), [42])
  })

  test('a persistent session resumes on another node with what was queued offline', async () => {
    const [a, b, c] = nodes
    const topic = `roost-it/${unique('jsr')}/q`
    const clientId = unique('js-resume')
    const session = { clientId, clean: false, properties: { sessionExpiryInterval: 300 } }
    const first = await connect(a, session)
    await subscribe(first.client, topic, { qos: 1 })
    const pub = track(await connect(b))
    await waitForRoute(pub, topic, first)
    await within(first.client.endAsync(), 'DISCONNECT')
    for (const i of [0, 1, 2]) await publish(pub.client, topic, `m${i}`, { qos: 1 })
    // The queued messages follow the CONNACK at once: the inbox listens
    // before the connection is made (connect() attaches it after).
    const client = mqtt.connect(c.url, { protocolVersion: 5, reconnectPeriod: 0, connectTimeout: TIMEOUT_MS, ...session })
    clients.push(client)
    const again = { client, inbox: new Inbox(client) }
    const connack = await within(new Promise((resolve, reject) => {
      client.once('connect', resolve)
      client.once('error', reject)
    }), 'CONNACK on C')
    assert.equal(connack.sessionPresent, true)
    const got = await again.inbox.take(3)
    assert.deepEqual(got.map((m) => m.payload.toString()), ['m0', 'm1', 'm2'])
  })
})
