/*
 * Postgres NOTIFY channels: the names the API, the graders and every instance's event hub agree on.
 * A contract between processes, so it lives below all of them.
 */

/** A grading job was queued or handed back: idle graders wake up and claim. Payload: empty. */
export const JOBS_CHANNEL = 'lab_jobs';
/** An `events` row was written (a verdict): event hubs read and relay it. Payload: the event id. */
export const EVENTS_CHANNEL = 'lab_events';
/**
 * A session or token stopped authenticating (logout, deletion, expiry changed — a trigger on `sessions`
 * and `api_tokens`, migration 0007, whatever changed the row): every instance forgets its cached caller
 * (http/caller-cache.ts) and ends the event streams opened with it. Payload: its id.
 */
export const CREDENTIALS_CHANNEL = 'lab_credentials';
