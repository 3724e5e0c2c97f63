// QoS 0/1/2 publish -> subscribe exchange between MQTT.js clients, MQTT 5 and 3.1.1.
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { startBroker } from '../lib/broker.mjs'
import { closeAll, connect, publish, subscribe, unique, withBrokerLog } from '../lib/client.mjs'

const versions = [
  { protocolVersion: 5, name: 'v5_mqtt_3_8_4_8 MQTT 5' },
  { protocolVersion: 4, name: 'v311_mqtt_3_8_4_6 MQTT 3.1.1' }
]

describe('MQTT.js publish/subscribe exchange', () => {
  let broker
  const clients = []
  before(async () => { broker = await startBroker() })
  after(async () => {
    await closeAll(clients)
    await broker?.stop()
  })

  for (const { protocolVersion, name } of versions) {
    for (const qos of [0, 1, 2]) {
      test(`${name}: QoS ${qos} messages arrive in order at QoS ${qos}`, () => withBrokerLog(broker, async () => {
        const topic = `roost-it/${unique('js-qos')}/data`
        const sub = await connect(broker, { protocolVersion })
        const pub = await connect(broker, { protocolVersion })
        clients.push(sub.client, pub.client)
        const granted = await subscribe(sub.client, topic, { qos: 2 })
        assert.equal(granted[0].qos, 2)

        const payloads = [0, 1, 2].map((i) => `message ${i} at QoS ${qos}`)
        for (const payload of payloads) await publish(pub.client, topic, payload, { qos })

        const received = await sub.inbox.take(payloads.length)
        assert.deepEqual(received.map((m) => m.payload.toString()), payloads)
        for (const message of received) {
          assert.equal(message.topic, topic)
          assert.equal(message.packet.qos, qos)
          assert.equal(message.packet.retain, false)
        }
      }))
    }
    test(`${name}: QoS 2 message to a QoS 1 subscription arrives at QoS 1`, () => withBrokerLog(broker, async () => {
      const topic = `roost-it/${unique('js-qos')}/downgrade`
      const sub = await connect(broker, { protocolVersion })
      const pub = await connect(broker, { protocolVersion })
      clients.push(sub.client, pub.client)
      await subscribe(sub.client, topic, { qos: 1 })
      await publish(pub.client, topic, 'down', { qos: 2 })
      const message = await sub.inbox.next()
      assert.equal(message.payload.toString(), 'down')
      assert.equal(message.packet.qos, 1)
    }))
  }
})
