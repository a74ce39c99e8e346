// ds-server.mjs - the Durable Streams reference server (npm @durable-streams/server)
// on 127.0.0.1 for the tests and benchmarks:
//   node tools/ds-server.mjs MODULES_DIR [port] [long_poll_ms] [lifetime_ms]
// MODULES_DIR holds node_modules (build/ds). Prints "listening <url>" once
// started; stops on SIGTERM/SIGINT, when stdin closes, or after lifetime_ms.
import { createRequire } from "node:module"
import path from "node:path"
const dir = path.resolve(process.argv[2] ?? "build/ds")
const require = createRequire(path.join(dir, "package.json"))
const { DurableStreamTestServer } = await import(require.resolve("@durable-streams/server"))
const server = new DurableStreamTestServer({ host: "127.0.0.1", port: Number(process.argv[3] ?? 0),
                                             longPollTimeout: Number(process.argv[4] ?? 500) })
const url = await server.start()
console.log(`listening ${url}`)
const stop = () => server.stop().then(() => process.exit(0), () => process.exit(1))
for (const s of ["SIGINT", "SIGTERM"]) process.on(s, stop)
process.stdin.on("end", stop)
process.stdin.resume()
setTimeout(stop, Number(process.argv[5] ?? 600000)).unref()
