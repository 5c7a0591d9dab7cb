import { describe, expect, it } from 'vitest';
import {
  isDatabaseUnavailable,
  isOutcomeUnknown,
  isRecoveryConflict,
  isStatementTimeout,
  isUniqueViolation,
} from './errors.ts';

/** How Drizzle hands pg's errors over: wrapped, with the driver's error as `cause`. */
const drizzle = (cause: object) => Object.assign(new Error('Failed query: insert …'), { cause });

describe('database error classification', () => {
  it('failover errors are "unavailable", also when Drizzle wraps them', () => {
    for (const code of ['25006', '57P01', '57P02', '57P03', '08006', '53300', 'ECONNRESET', 'ECONNREFUSED']) {
      expect(isDatabaseUnavailable({ code })).toBe(true);
      expect(isDatabaseUnavailable(drizzle({ code }))).toBe(true);
    }
    expect(isDatabaseUnavailable(drizzle(new Error('Connection terminated unexpectedly')))).toBe(true);
    expect(isDatabaseUnavailable(new Error('Client was closed and is not queryable'))).toBe(true);
    expect(isDatabaseUnavailable(drizzle({ code: '23505' }))).toBe(false);
    expect(isDatabaseUnavailable(new Error('a bug'))).toBe(false);
    expect(isDatabaseUnavailable(null)).toBe(false);
  });

  it('reads the other markers through the cause chain', () => {
    expect(isOutcomeUnknown(drizzle({ outcomeUnknown: true }))).toBe(true);
    expect(isOutcomeUnknown(drizzle({ code: '25006' }))).toBe(false);
    expect(isStatementTimeout(drizzle({ code: '57014' }))).toBe(true);
    expect(isUniqueViolation(drizzle({ code: '23505', constraint: 'x' }), 'x')).toBe(true);
    expect(isUniqueViolation(drizzle({ code: '23505', constraint: 'y' }), 'x')).toBe(false);
    const conflict = { code: '40001', message: 'canceling statement due to conflict with recovery' };
    expect(isRecoveryConflict(drizzle(conflict))).toBe(true);
    expect(isRecoveryConflict({ code: '40001', message: 'could not serialize access' })).toBe(false);
  });
});
