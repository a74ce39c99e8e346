// ds-server.mjs - the Durable Streams reference server (npm @durable-streams/server)
// on 127.0.0.1, for trying the client by hand (tools/ds-server, `make ds-server`),
// the tests and the benchmarks:
//   node tools/ds-server.mjs [MODULES_DIR] [port] [long_poll_ms] [lifetime_ms] [--stdin]
// MODULES_DIR holds node_modules (default build/ds); port 0 (the default) picks a
// free one; long_poll_ms defaults to 500. Prints "listening <url>" once started,
// then runs until SIGINT (Ctrl-C) or SIGTERM. Opt-in stops for a parent process:
// lifetime_ms (> 0) stops it after that long; --stdin stops it when its stdin
// closes (the parent holds the write end of a pipe, so the server cannot outlive it).
import { createRequire } from "node:module"
import path from "node:path"
const args = process.argv.slice(2).filter((a) => a !== "--stdin")
const onStdin = args.length !== process.argv.length - 2
const dir = path.resolve(args[0] ?? "build/ds")
const port = Number(args[1] ?? 0), longPoll = Number(args[2] ?? 500), lifetime = Number(args[3] ?? 0)
const fail = (msg) => { console.error(`ds-server: ${msg}`); process.exit(1) }
let mod
try {
    mod = createRequire(path.join(dir, "package.json")).resolve("@durable-streams/server")
} catch {
    fail(`@durable-streams/server is not installed in ${dir}; ` +
         "`make ds-server` (or tools/setup.sh) installs it into build/ds")
}
const { DurableStreamTestServer } = await import(mod)
const server = new DurableStreamTestServer({ host: "127.0.0.1", port, longPollTimeout: longPoll })
let url
try {
    url = await server.start()
} catch (e) {
    fail(`cannot listen on 127.0.0.1:${port}: ${e.code ?? e.message}`)
}
console.log(`listening ${url}`)
const stop = () => server.stop().then(() => process.exit(0), () => process.exit(1))
for (const s of ["SIGINT", "SIGTERM"]) process.on(s, stop)
if (onStdin) {
    process.stdin.on("end", stop)
    process.stdin.resume()
}
if (lifetime > 0) setTimeout(stop, lifetime).unref()
