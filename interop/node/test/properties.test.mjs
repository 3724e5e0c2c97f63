// MQTT 5 PUBLISH properties with MQTT.js.
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { startBroker } from '../lib/broker.mjs'
import { closeAll, connect, publish, subscribe, unique, withBrokerLog } from '../lib/client.mjs'

describe('MQTT.js MQTT 5 properties', () => {
  let broker
  const clients = []
  before(async () => { broker = await startBroker() })
  after(async () => {
    await closeAll(clients)
    await broker?.stop()
  })

  test('v5_mqtt_3_3_2_17 v5_mqtt_3_3_2_18: user properties forwarded unaltered and in order', () => withBrokerLog(broker, async () => {
    const topic = `roost-it/${unique('js-props')}/data`
    const sub = await connect(broker)
    const pub = await connect(broker)
    clients.push(sub.client, pub.client)
    await subscribe(sub.client, topic, { qos: 1 })
    // MQTT.js keeps user properties as an object in wire order; repeated names become arrays.
    const userProperties = { zeta: '1', alpha: ['2', '3'], mid: 'ünïcode' }
    await publish(pub.client, topic, 'payload', {
      qos: 1,
      properties: {
        userProperties,
        responseTopic: `${topic}/reply`,
        correlationData: Buffer.from([0, 1, 2, 255]),
        contentType: 'text/plain'
      }
    })
    const { packet } = await sub.inbox.next()
    assert.deepEqual(Object.entries(packet.properties.userProperties), Object.entries(userProperties))
    assert.equal(packet.properties.responseTopic, `${topic}/reply`)
    assert.deepEqual(packet.properties.correlationData, Buffer.from([0, 1, 2, 255]))
    assert.equal(packet.properties.contentType, 'text/plain')
  }))

  test('v5_mqtt_3_3_4_3: subscription identifier sent with the message', () => withBrokerLog(broker, async () => {
    const topic = `roost-it/${unique('js-subid')}/data`
    const sub = await connect(broker)
    const pub = await connect(broker)
    clients.push(sub.client, pub.client)
    await subscribe(sub.client, topic, { qos: 1, properties: { subscriptionIdentifier: 5 } })
    await publish(pub.client, topic, 'x', { qos: 1 })
    const { packet } = await sub.inbox.next()
    assert.equal(packet.properties.subscriptionIdentifier, 5)
  }))
})
