// The JavaScript side of the request templates (bench/wrk.lua documents the rule; bench/load.ts uses
// `expand` for its sample requests) and autocannon's setupRequest in its worker threads (a file,
// because functions cannot be sent to a worker), which reads its template from BENCH_REQUEST.
// Each worker numbers its requests worker, worker + workers, … Workers of one run are created back
// to back, so their threadIds are consecutive and `threadId % workers` tells them apart.
const { threadId } = require('node:worker_threads');
const { readFileSync } = require('node:fs');

/** `{name}` becomes add + (n × mul) % mod (mod 0: no modulo); `{listed}` the (n % length)-th line. */
function expand(template, n, tokens, listed) {
  return template.replace(/\{(\w+)\}/g, (_, name) => {
    if (name === 'listed') return listed[n % listed.length];
    const [mul, mod, add] = tokens[name];
    return String(add + (mod > 0 ? (n * mul) % mod : n * mul));
  });
}

let spec;
let listed;
let counter = 0;

function setupRequest(request) {
  if (!spec) {
    spec = JSON.parse(process.env.BENCH_REQUEST);
    listed = spec.listFile ? readFileSync(spec.listFile, 'utf8').split('\n').filter(Boolean) : [];
  }
  const n = counter++ * spec.workers + (threadId % spec.workers);
  const headers = {
    ...(spec.body && { 'content-type': 'application/json' }),
    ...(spec.authorization && { authorization: spec.authorization }),
    ...(spec.idempotencyKey && { 'idempotency-key': expand(spec.idempotencyKey, n, spec.tokens, listed) }),
  };
  const path = expand(spec.path, n, spec.tokens, listed);
  if (!spec.body) return { ...request, method: spec.method, path, headers };
  return { ...request, method: spec.method, path, body: expand(spec.body, n, spec.tokens, listed), headers };
}

module.exports = setupRequest;
module.exports.expand = expand;
