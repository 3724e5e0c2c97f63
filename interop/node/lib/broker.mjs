// Starts the roost binary as `roost -p 0` and reads its port from the
// `listening on mqtt://IP:PORT` line it logs on stderr. Other listeners
// (`mqtts://`, `ws://…/mqtt`, `wss://…/mqtt`, `quic://`) are announced before
// the TCP one and collected in `listeners`.
import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..')
const LISTENING = /listening on (mqtts|mqtt|wss|ws|quic):\/\/(\[[^\]]+\]|[^\s:/]+):(\d+)(\/\S*)?/
const ANSI_ESCAPE = /\x1b\[[0-9;]*m/g // eslint-disable-line no-control-regex
const STARTUP_TIMEOUT_MS = 10_000

export function roostBinary () {
  const configured = process.env.ROOST_BIN ?? path.join('target', 'debug', 'roost')
  return path.isAbsolute(configured) ? configured : path.join(repoRoot, configured)
}

/** A running broker: `url`, `listeners` (scheme -> { host, port, url }), `log()` (its stderr so far) and `stop()`. */
export async function startBroker (...extraArgs) {
  const binary = roostBinary()
  if (!existsSync(binary)) {
    throw new Error(`roost binary not found at ${binary}: run \`cargo build -p roost\` or set ROOST_BIN`)
  }
  const args = ['-p', '0', ...extraArgs]
  const child = spawn(binary, args, {
    stdio: ['ignore', 'ignore', 'pipe'],
    // A private store per broker: the server keeps state on disk (./roost-data by default).
    env: {
      ROOST_STORE__DATA_DIR: mkdtempSync(path.join(os.tmpdir(), 'roost-data-')),
      ...process.env,
      RUST_LOG: process.env.RUST_LOG ?? 'info',
      NO_COLOR: '1'
    }
  })
  const lines = []
  const listeners = {}
  let pending = ''
  const log = () => lines.join('\n')
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })))

  const address = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`roost did not log 'listening on mqtt://' within ${STARTUP_TIMEOUT_MS} ms:\n${log()}`)), STARTUP_TIMEOUT_MS)
    child.once('error', (err) => { clearTimeout(timer); reject(err) })
    child.stderr.on('data', (chunk) => {
      pending += chunk.toString('utf8')
      const parts = pending.split('\n')
      pending = parts.pop()
      for (const raw of parts) {
        const line = raw.replace(ANSI_ESCAPE, '')
        lines.push(line)
        const match = LISTENING.exec(line)
        if (match) {
          const [, scheme, rawHost, port, path = ''] = match
          const host = rawHost.replace(/^\[|\]$/g, '')
          listeners[scheme] ??= { host, port: Number(port), url: `${scheme}://${rawHost}:${port}${path}` }
          if (scheme === 'mqtt') {
            clearTimeout(timer)
            resolve({ host, port: Number(port) })
          }
        }
      }
    })
    exited.then(({ code, signal }) => {
      clearTimeout(timer)
      reject(new Error(`roost exited (code ${code}, signal ${signal}) before listening:\n${log()}`))
    })
  }).catch((err) => {
    child.kill('SIGKILL')
    throw err
  })

  return {
    ...address,
    url: `mqtt://${address.host.includes(':') ? `[${address.host}]` : address.host}:${address.port}`,
    listeners,
    log,
    /** SIGTERM, then SIGKILL after a bounded wait. */
    async stop (graceMs = 5000) {
      if (child.exitCode !== null || child.signalCode !== null) return
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs)
      await exited
      clearTimeout(timer)
    }
  }
}
