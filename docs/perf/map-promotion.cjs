// `node --max-semi-space-size=64 --trace-gc docs/perf/map-promotion.cjs <mode>`: a request-like loop
// (each "request" allocates a reply object and ~40 small garbage objects; 32 are in flight at once) that
// keeps its in-flight replies in one of: none (only the array of in-flight requests), map (Map reply →
// deadline, as src/http/overload.ts did), set (Set of replies), idmap (Map id → reply), list (a doubly
// linked list, as src/lib/deadline-list.ts does). Runs 3 s and prints how much the old generation grew.
// Compare the Scavenge lines (heap after each scavenge, pause) and count the Mark-Compact lines:
//   for m in none map set idmap list; do echo "$m $(node --max-semi-space-size=64 --trace-gc \
//     docs/perf/map-promotion.cjs $m | grep -c Mark-Compact)"; done
const v8 = require('node:v8');

const mode = process.argv[2] ?? 'none';
const map = new Map();
const set = new Set();
const idmap = new Map();
let head = null;
let tail = null;
let sink = 0;

function arrive(i) {
  const reply = { id: i, payload: new Array(100).fill(i), raw: { buf: 'x'.repeat(200) + i }, node: null };
  if (mode === 'map') map.set(reply, Date.now() + 15000);
  if (mode === 'set') set.add(reply);
  if (mode === 'idmap') idmap.set(i, reply);
  if (mode === 'list') {
    const node = { reply, deadline: Date.now() + 15000, prev: tail, next: null };
    if (tail) tail.next = node;
    else head = node;
    tail = node;
    reply.node = node;
  }
  for (let k = 0; k < 50; k++) sink += JSON.stringify({ a: k, b: [k, k + 1, `y${k}`] }).length;
  return reply;
}

function leave(reply) {
  if (mode === 'map') map.delete(reply);
  if (mode === 'set') set.delete(reply);
  if (mode === 'idmap') idmap.delete(reply.id);
  if (mode === 'list') {
    const x = reply.node;
    if (x.prev) x.prev.next = x.next;
    else head = x.next;
    if (x.next) x.next.prev = x.prev;
    else tail = x.prev;
    x.prev = null;
    x.next = null;
    reply.node = null;
  }
}

const oldUsed = () => v8.getHeapSpaceStatistics().find((s) => s.space_name === 'old_space').space_used_size;
const inFlight = [];
const started = Date.now();
const old0 = oldUsed();
let n = 0;
(function tick() {
  for (let j = 0; j < 200; j++) {
    inFlight.push(arrive(n++));
    if (inFlight.length > 32) leave(inFlight.shift());
  }
  if (Date.now() - started < 3000) setImmediate(tick);
  else console.log(`${mode}: ${n} requests, old generation grew ${((oldUsed() - old0) / 1e6).toFixed(1)} MB (${sink > 0})`);
})();
