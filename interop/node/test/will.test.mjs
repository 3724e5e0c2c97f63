// Will messages with MQTT.js: published when the connection drops, not after a clean DISCONNECT.
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { startBroker } from '../lib/broker.mjs'
import { closeAll, connect, publish, subscribe, unique, within, withBrokerLog } from '../lib/client.mjs'

const versions = [
  { protocolVersion: 5, label: 'MQTT 5' },
  { protocolVersion: 4, label: 'MQTT 3.1.1' }
]

describe('MQTT.js will messages', () => {
  let broker
  const clients = []
  before(async () => { broker = await startBroker() })
  after(async () => {
    await closeAll(clients)
    await broker?.stop()
  })

  for (const { protocolVersion, label } of versions) {
    test(`mqtt_3_1_2_8 ${label}: will published when the connection closes without DISCONNECT`, () => withBrokerLog(broker, async () => {
      const willTopic = `roost-it/${unique('js-will')}/status`
      const watcher = await connect(broker, { protocolVersion })
      clients.push(watcher.client)
      await subscribe(watcher.client, willTopic, { qos: 1 })
      const dying = await connect(broker, {
        protocolVersion,
        will: { topic: willTopic, payload: Buffer.from('gone'), qos: 1, retain: false }
      })
      clients.push(dying.client)
      // Drop the TCP connection without an MQTT DISCONNECT.
      dying.client.stream.destroy()
      const will = await watcher.inbox.next('will message')
      assert.equal(will.topic, willTopic)
      assert.equal(will.payload.toString(), 'gone')
    }))

    test(`mqtt_3_14_4_3 ${label}: will discarded after a clean DISCONNECT`, () => withBrokerLog(broker, async () => {
      const willTopic = `roost-it/${unique('js-will')}/status`
      const watcher = await connect(broker, { protocolVersion })
      clients.push(watcher.client)
      await subscribe(watcher.client, willTopic, { qos: 1 })
      const leaving = await connect(broker, {
        protocolVersion,
        will: { topic: willTopic, payload: Buffer.from('gone'), qos: 1, retain: false }
      })
      await within(leaving.client.endAsync(), 'clean disconnect')
      const sentinel = await connect(broker, { protocolVersion })
      clients.push(sentinel.client)
      await publish(sentinel.client, willTopic, 'sentinel', { qos: 1 })
      const first = await watcher.inbox.next('sentinel')
      assert.equal(first.payload.toString(), 'sentinel', 'will published after a clean DISCONNECT')
    }))
  }
})
