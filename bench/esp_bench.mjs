// esp_bench.mjs - the eventsource-parser baseline for bench/bench_codecs.c.
//   node bench/esp_bench.mjs <module dir> <file> <chunk bytes> <reps> [max bytes]
// Reads the file into memory, then per repetition decodes it with a streaming
// TextDecoder and eventsource-parser's createParser, fed <chunk bytes> at a
// time, counting events. Prints "mbps=<median MB/s> events=<count>".
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { join } from 'node:path';

const [dir, file, chunkArg, repsArg, maxArg] = process.argv.slice(2);
const { createParser } = await import(pathToFileURL(join(dir, 'node_modules/eventsource-parser/dist/index.js')).href);
let buf = readFileSync(file);
if (maxArg) buf = buf.subarray(0, Math.min(buf.length, Number(maxArg)));
const chunk = Number(chunkArg), reps = Number(repsArg);
const rates = [];
let events = 0;
for (let r = 0; r < reps; r++) {
  let n = 0, bytes = 0;
  const parser = createParser({ onEvent(ev) { n++; bytes += ev.data.length; } });
  const dec = new TextDecoder('utf-8');
  const t0 = process.hrtime.bigint();
  for (let off = 0; off < buf.length; off += chunk)
    parser.feed(dec.decode(buf.subarray(off, Math.min(off + chunk, buf.length)), { stream: true }));
  parser.feed(dec.decode());
  const t1 = process.hrtime.bigint();
  rates.push(buf.length / 1e6 / (Number(t1 - t0) / 1e9));
  events = n;
  if (bytes < 0) console.log(bytes);
}
rates.sort((a, b) => a - b);
console.log(`mbps=${rates[Math.floor(rates.length / 2)].toFixed(1)} events=${events}`);
