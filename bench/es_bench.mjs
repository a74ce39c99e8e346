// es_bench.mjs - the npm eventsource baseline for bench/bench_sse.c.
//   node bench/es_bench.mjs <module dir> <url> <events>
// Opens the stream with the eventsource package's EventSource, counts
// message events until <events>, then closes it. Prints
// "events_per_s=<rate> events=<count> last_id=<id>".
import { pathToFileURL } from 'node:url';
import { join } from 'node:path';

const [dir, url, nArg] = process.argv.slice(2);
const { EventSource } = await import(pathToFileURL(join(dir, 'node_modules/eventsource/dist/index.js')).href);
const want = Number(nArg);
let n = 0, last = '';
const t0 = process.hrtime.bigint();
const es = new EventSource(url);
es.onmessage = (ev) => {
  n++;
  last = ev.lastEventId;
  if (n === want) {
    const dt = Number(process.hrtime.bigint() - t0) / 1e9;
    es.close();
    console.log(`events_per_s=${(n / dt).toFixed(0)} events=${n} last_id=${last}`);
  }
};
es.onerror = () => { if (n < want) { console.log(`error after ${n} events`); es.close(); process.exitCode = 1; } };
