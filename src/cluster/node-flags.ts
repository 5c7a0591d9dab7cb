/**
 * V8 flags an API server runs with: the supervisor's workers, the systemd unit, the container and the
 * benchmarks (which give the bare baseline the same, so they compare code, not runtime settings).
 *
 * A request allocates ~50 kB that dies young (docs/perf/lesson-read-profile.md), so V8's default 16 MB
 * semi-space fills many times a second under load and each scavenge copies whatever requests are in
 * flight; at the same allocation rate, 64 MB scavenges a quarter as often. Lab's app CPU per lesson read
 * (medians of interleaved rounds, docs/perf/node-flags.ts): 0.209 → 0.149 ms, 0.190 → 0.166, 0.230 → 0.186
 * (32 and 128 MB did less); the bare baseline's 0.135 → 0.124 and 0.157 → 0.166 — Lab allocates more per
 * request, so it gains more. The cost is up to ~100 MB more memory per process under load.
 */
export const API_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=64'];
