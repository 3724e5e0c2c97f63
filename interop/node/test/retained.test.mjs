// Retained messages with MQTT.js: stored, given to late subscribers, cleared by an empty payload.
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { startBroker } from '../lib/broker.mjs'
import { closeAll, connect, publish, subscribe, unique, withBrokerLog } from '../lib/client.mjs'

const versions = [
  { protocolVersion: 5, name: 'v5_mqtt_3_3_1_5 v5_mqtt_3_3_1_6 MQTT 5' },
  { protocolVersion: 4, name: 'v311_mqtt_3_3_1_6 v311_mqtt_3_3_1_10 MQTT 3.1.1' }
]

describe('MQTT.js retained messages', () => {
  let broker
  const clients = []
  before(async () => { broker = await startBroker() })
  after(async () => {
    await closeAll(clients)
    await broker?.stop()
  })

  for (const { protocolVersion, name } of versions) {
    test(`${name}: late subscriber gets the last retained message; an empty one clears it`, () => withBrokerLog(broker, async () => {
      const topic = `roost-it/${unique('js-retain')}/state`
      const pub = await connect(broker, { protocolVersion })
      clients.push(pub.client)
      await publish(pub.client, topic, 'old', { qos: 1, retain: true })
      await publish(pub.client, topic, 'new', { qos: 1, retain: true })

      const late = await connect(broker, { protocolVersion })
      clients.push(late.client)
      await subscribe(late.client, topic, { qos: 1 })
      const retained = await late.inbox.next('retained message')
      assert.equal(retained.payload.toString(), 'new')
      assert.equal(retained.packet.retain, true)

      await publish(pub.client, topic, '', { qos: 1, retain: true })
      const cleared = await late.inbox.next('empty retained message')
      assert.equal(cleared.payload.length, 0)

      const later = await connect(broker, { protocolVersion })
      clients.push(later.client)
      await subscribe(later.client, topic, { qos: 1 })
      await publish(pub.client, topic, 'sentinel', { qos: 1 })
      const first = await later.inbox.next('sentinel')
      assert.equal(first.payload.toString(), 'sentinel', 'a cleared retained message was delivered')
    }))
  }
})
