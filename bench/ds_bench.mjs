// ds_bench.mjs - the TypeScript client's side of bench/bench_ds.c:
//   node bench/ds_bench.mjs MODULES_DIR SERVER_URL OP N PATH
// OP: latency (N awaited 100-byte appends to a fresh stream: median ms),
//     producer (N x 100-byte messages through an IdempotentProducer to a
//     fresh stream, then flush: msgs/s), catchup (read PATH from -1 to up to
//     date: MB/s), sse (N round trips, append then receive over live SSE:
//     median ms). Prints "result=<value>".
import { createRequire } from "node:module"
import path from "node:path"
const [dir, base, op, nArg, name] = process.argv.slice(2)
const require = createRequire(path.join(path.resolve(dir), "package.json"))
const { DurableStream, IdempotentProducer, stream } = await import(require.resolve("@durable-streams/client"))
const n = Number(nArg)
const url = `${base}${name}`
const body = "*".repeat(100)
const now = () => Number(process.hrtime.bigint()) / 1e6
const median = (v) => { v.sort((a, b) => a - b); return v.length % 2 ? v[(v.length - 1) / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2 }
async function latency(url) {
  const s = await DurableStream.create({ url, contentType: "application/octet-stream" })
  const t = []
  for (let i = 0; i < n; i++) { const t0 = now(); await s.append(body); t.push(now() - t0) }
  return median(t)
}
async function producer(url) {
  const s = await DurableStream.create({ url, contentType: "application/octet-stream" })
  const p = new IdempotentProducer(s, "bench-producer", { lingerMs: 0, maxInFlight: 5 })
  const t0 = now()
  for (let i = 0; i < n; i++) p.append(body)
  await p.flush()
  return n / ((now() - t0) / 1000)
}
async function catchup(url) {
  const t0 = now()
  const res = await stream({ url, offset: "-1", live: false })
  const bytes = await res.body()
  return bytes.length / 1048576 / ((now() - t0) / 1000)
}
async function sse(url) {
  const s = await DurableStream.create({ url, contentType: "application/octet-stream" })
  const res = await stream({ url, offset: "-1", live: "sse" })
  let waiter = null
  res.subscribeBytes(async (chunk) => { if (chunk.data.length && waiter) { const w = waiter; waiter = null; w() } })
  await new Promise((r) => setTimeout(r, 50))
  const t = []
  for (let i = 0; i < n; i++) {
    const got = new Promise((r) => { waiter = r })
    const t0 = now()
    await s.append(body)
    await got
    t.push(now() - t0)
  }
  res.cancel()
  return median(t)
}
const ops = { latency, producer, catchup, sse }
await ops[op](op === "catchup" ? url : `${url}-warm`)
const result = await ops[op](url)
console.log(`result=${result}`)
process.exit(0)
