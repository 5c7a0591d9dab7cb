/**
 * V8 flags an API server runs with: the supervisor's workers, the systemd unit, the container and the
 * benchmarks (which give the bare baseline the same, so they compare code, not runtime settings).
 *
 * A request allocates ~50 kB that dies young (docs/perf/lesson-read-profile.md), so V8's default 16 MB
 * semi-space fills many times a second under load and each scavenge copies whatever requests are in
 * flight. 64 MB scavenges a quarter as often: the lesson read's app CPU per request fell 0.209 → 0.149 ms
 * (median of 6 interleaved rounds; 32 and 128 MB did less), and 0.190 → 0.166 ms in a
 * second run where the bare baseline went 0.135 → 0.124 ms: it helps Lab more, as Lab allocates more per
 * request. The cost is up to ~100 MB more memory per process under load.
 */
export const API_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=64'];
