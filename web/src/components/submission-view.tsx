import type { Run, Submission, TestResult } from '../api/types.ts';
import { formatDate } from './ui.tsx';

type Status = Submission['status'] | 'partial';

const STATUS_LABEL: Record<Status, string> = {
  queued: 'Queued',
  running: 'Running',
  passed: 'Passed',
  failed: 'Failed',
  partial: 'Partial',
  error: 'Error',
};

export const isPending = (s: { status: string }) => s.status === 'queued' || s.status === 'running';

/** "failed" with some tests passed reads "Partial": the score is not zero. */
export function displayStatus(s: { status: Submission['status']; results: TestResult[] }): Status {
  if (s.status === 'failed' && s.results.some((r) => r.passed)) return 'partial';
  return s.status;
}

export function StatusBadge({ submission }: { submission: Pick<Submission, 'status' | 'results'> }) {
  const status = displayStatus(submission);
  return (
    <span className={`badge status-${status}`}>
      {isPending(submission) && <span className="spinner" aria-hidden="true" />}
      {STATUS_LABEL[status]}
    </span>
  );
}

export const statusLabel = (s: Pick<Submission, 'status' | 'results'>) => STATUS_LABEL[displayStatus(s)];

export function TestResults({ results }: { results: TestResult[] }) {
  if (results.length === 0) return null;
  return (
    <ul className="tests">
      {results.map((r, i) => (
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
              <span className="test-output-label">Output</span>
              <pre>{r.output}</pre>
            </div>
          )}
        </li>
      ))}
    </ul>
  );
}

/** One submission's outcome: status, score (and the late credit), late marker, the reason of an error, each test. */
export function SubmissionResult({ submission: s, maxScore }: { submission: Submission; maxScore?: number }) {
  const credited = s.credit < 1 && s.rawScore !== null && s.rawScore > 0;
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
        {credited && (
          <span className="muted credit">
            {s.rawScore} before late credit × {Math.round(s.credit * 100)} %
          </span>
        )}
        <span className="muted">{formatDate(s.createdAt)}</span>
      </p>
      {s.status === 'queued' && <p className="muted">Waiting for a grader… the result appears here.</p>}
      {s.status === 'running' && <p className="muted">Running your tests now…</p>}
      {s.message && <p className="submission-message">{s.message}</p>}
      <TestResults results={s.results} />
    </div>
  );
}

/** A run's outcome (nothing recorded): the tests, or what the program printed on the given input. */
export function RunResult({ run }: { run: Run }) {
  return (
    <div className="submission run" data-status={run.status} data-run-id={run.id}>
      <p className="submission-head">
        <StatusBadge submission={run} />
        <span className="muted">Run at {formatDate(run.createdAt)} · not submitted, no attempt used</span>
      </p>
      {run.status === 'queued' && <p className="muted">Waiting for a grader…</p>}
      {run.status === 'running' && <p className="muted">Running…</p>}
      {run.message && <p className="submission-message">{run.message}</p>}
      {run.output !== null && (
        <div className="console-output">
          <span className="test-output-label">Program output</span>
          <pre>{run.output || '(nothing printed)'}</pre>
        </div>
      )}
      <TestResults results={run.results} />
    </div>
  );
}
