// MQTT.js helpers: connect with bounded waits, and an inbox to wait on messages.
import { randomUUID } from 'node:crypto'
import mqtt from 'mqtt'

export const TIMEOUT_MS = Number(process.env.ROOST_TEST_TIMEOUT ?? 10) * 1000

export function unique (prefix) {
  return `${prefix}-${randomUUID().slice(0, 12)}`
}

/** Rejects with `what` when `promise` does not settle within `ms`. */
export function within (promise, what, ms = TIMEOUT_MS) {
  let timer
  const timeout = new Promise((resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

/** Messages received by a client, in order; `next()` waits for the next one. */
export class Inbox {
  constructor (client) {
    this.queue = []
    this.waiters = []
    client.on('message', (topic, payload, packet) => {
      const message = { topic, payload, packet }
      const waiter = this.waiters.shift()
      if (waiter) waiter(message)
      else this.queue.push(message)
    })
  }

  next (what = 'message') {
    if (this.queue.length > 0) return Promise.resolve(this.queue.shift())
    return within(new Promise((resolve) => this.waiters.push(resolve)), what)
  }

  async take (count) {
    const out = []
    for (let i = 0; i < count; i++) out.push(await this.next(`message ${i + 1} of ${count}`))
    return out
  }
}

/**
 * Connects an MQTT.js client (protocolVersion 5 or 4) to `broker` and returns
 * { client, inbox }. Reconnects are off, so a failure surfaces at once.
 */
export async function connect (broker, { protocolVersion = 5, clientId, ...options } = {}) {
  const client = await within(
    mqtt.connectAsync(broker.url, {
      protocolVersion,
      clientId: clientId ?? unique('js'),
      reconnectPeriod: 0,
      connectTimeout: TIMEOUT_MS,
      keepalive: 30,
      ...options
    }),
    'CONNACK'
  )
  return { client, inbox: new Inbox(client) }
}

/** Subscribes and checks the SUBACK granted what was asked. */
export async function subscribe (client, topic, options) {
  const granted = await within(client.subscribeAsync(topic, options), `SUBACK for ${topic}`)
  for (const grant of granted) {
    if (grant.qos >= 0x80) throw new Error(`subscription to ${grant.topic} refused: 0x${grant.qos.toString(16)}`)
  }
  return granted
}

/** Publishes and waits for the QoS flow to complete. */
export function publish (client, topic, payload, options = {}) {
  return within(client.publishAsync(topic, payload, options), `publish to ${topic}`)
}

/** Runs a test body; on failure the broker's stderr is added to the error. */
export async function withBrokerLog (broker, body) {
  try {
    await body()
  } catch (err) {
    err.message += `\n--- roost stderr ---\n${broker.log()}`
    throw err
  }
}

/** Ends clients without waiting on a broker that may be gone. */
export async function closeAll (clients) {
  await Promise.allSettled(clients.map((c) => within(c.endAsync(true), 'client end', 2000)))
}
