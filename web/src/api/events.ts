import { useEffect, useState } from 'react';
import type { Run, Submission } from './types.ts';

type Handler = (s: Submission) => void;
export type StreamState = 'connecting' | 'open' | 'closed';

/**
 * One EventSource per tab on /api/v1/events, shared by every page that wants submission updates.
 * The browser reconnects by itself and sends Last-Event-ID, so updates missed meanwhile are replayed.
 */
class SubmissionEvents {
  private source: EventSource | null = null;
  private handlers = new Set<Handler>();
  private runHandlers = new Set<(r: Run) => void>();
  private stateListeners = new Set<(s: StreamState) => void>();
  state: StreamState = 'closed';

  private setState(s: StreamState) {
    this.state = s;
    for (const fn of this.stateListeners) fn(s);
  }

  private open() {
    if (this.source) return;
    const es = new EventSource('/api/v1/events', { withCredentials: true });
    this.source = es;
    this.setState('connecting');
    es.onopen = () => this.setState('open');
    es.onerror = () => this.setState(es.readyState === EventSource.CLOSED ? 'closed' : 'connecting');
    es.addEventListener('submission.updated', (ev) => {
      try {
        const data = JSON.parse((ev as MessageEvent<string>).data) as { submission: Submission };
        for (const fn of this.handlers) fn(data.submission);
      } catch {
        // A malformed event is ignored; the next update or a reload shows the truth.
      }
    });
    es.addEventListener('run.updated', (ev) => {
      try {
        const data = JSON.parse((ev as MessageEvent<string>).data) as { run: Run };
        for (const fn of this.runHandlers) fn(data.run);
      } catch {
        // As above; a run's author also polls GET /runs/:id.
      }
    });
  }

  /** run.updated events (v1.1): a run answered 202 finishes here. */
  subscribeRuns(fn: (r: Run) => void): () => void {
    this.runHandlers.add(fn);
    this.open();
    return () => {
      this.runHandlers.delete(fn);
    };
  }

  subscribe(fn: Handler): () => void {
    this.handlers.add(fn);
    this.open();
    return () => {
      this.handlers.delete(fn);
    };
  }

  onState(fn: (s: StreamState) => void): () => void {
    this.stateListeners.add(fn);
    return () => {
      this.stateListeners.delete(fn);
    };
  }

  /** On sign-out: the stream belongs to the old session. */
  close() {
    this.source?.close();
    this.source = null;
    this.setState('closed');
  }
}

export const submissionEvents = new SubmissionEvents();

/** Calls `fn` for every submission update while the component is mounted. */
export function useSubmissionEvents(fn: Handler) {
  useEffect(() => submissionEvents.subscribe(fn), [fn]);
}

export function useStreamState(): StreamState {
  const [state, setState] = useState(submissionEvents.state);
  useEffect(() => submissionEvents.onState(setState), []);
  return state;
}
