import type { Submission } from '../api/types.ts';
import { formatDate } from './ui.tsx';

const STATUS_LABEL: Record<Submission['status'], string> = {
  queued: 'Queued',
  running: 'Running',
  passed: 'Passed',
  failed: 'Failed',
  error: 'Error',
};

export const isPending = (s: Submission) => s.status === 'queued' || s.status === 'running';

export function StatusBadge({ submission }: { submission: Submission }) {
  return (
    <span className={`badge status-${submission.status}`}>
      {isPending(submission) && <span className="spinner" aria-hidden="true" />}
      {STATUS_LABEL[submission.status]}
    </span>
  );
}

/** One submission's outcome: status, score, late marker, the reason of an error, and each test. */
export function SubmissionResult({ submission: s, maxScore }: { submission: Submission; maxScore?: number }) {
  return (
    <div className="submission" data-status={s.status} data-submission-id={s.id}>
      <p className="submission-head">
        <StatusBadge submission={s} />
        {s.score !== null && (
          <span className="score">
            Score <strong>{s.score}</strong>
            {maxScore !== undefined && ` / ${maxScore}`}
          </span>
        )}
        {s.late && <span className="badge late">Late</span>}
        <span className="muted">{formatDate(s.createdAt)}</span>
      </p>
      {isPending(s) && <p className="muted">Grading… the result appears here as soon as it is ready.</p>}
      {s.message && <p className="submission-message">{s.message}</p>}
      {s.results.length > 0 && (
        <ul className="tests">
          {s.results.map((r, i) => (
            // biome-ignore lint/suspicious/noArrayIndexKey: results are a fixed list in test order; names may repeat
            <li key={`${r.name}-${i}`} className={r.passed ? 'test pass' : 'test fail'}>
              <span className="test-mark" aria-hidden="true">
                {r.passed ? '✓' : '✗'}
              </span>
              <span className="test-name">
                {r.name}
                {r.hidden && <span className="badge hidden-test">hidden</span>}
              </span>
              <span className="visually-hidden">{r.passed ? 'passed' : 'failed'}</span>
              {/* Students are not told how long a hidden test ran (its duration could carry its input out). */}
              {!(r.hidden && r.durationMs === 0) && (
                <span className="muted test-time">{Math.round(r.durationMs)} ms</span>
              )}
              {r.message && <pre className="test-message">{r.message}</pre>}
              {r.output && (
                <div className="test-output">
                  <span className="visually-hidden">Output:</span>
                  <pre>{r.output}</pre>
                </div>
              )}
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}
