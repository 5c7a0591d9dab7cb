import { describe, expect, it } from 'vitest';
import { coalesced } from './coalesced.ts';

/** A send whose calls are counted and each finish when the test says so. */
function controlledSend(fail = false) {
  const finishers: (() => void)[] = [];
  const send = () =>
    new Promise<void>((resolve, reject) => {
      finishers.push(() => (fail ? reject(new Error('down')) : resolve()));
    });
  const finishNext = async () => {
    finishers.shift()!();
    // Lets the .finally of the finished send run (it may start the next one).
    for (let i = 0; i < 5; i++) await Promise.resolve();
  };
  return { send, finishNext };
}

describe('coalesced', () => {
  it('sends at once, and once more after the one in flight however many calls came meanwhile', async () => {
    const c = controlledSend();
    let sent = 0;
    const wake = coalesced(() => {
      sent++;
      return c.send();
    });
    wake();
    expect(sent).toBe(1);
    wake();
    wake();
    wake();
    expect(sent).toBe(1);
    await c.finishNext();
    expect(sent).toBe(2);
    await c.finishNext();
    expect(sent).toBe(2);
    wake();
    expect(sent).toBe(3);
  });

  it('keeps going after a failed send, and never rejects', async () => {
    const c = controlledSend(true);
    let sent = 0;
    const wake = coalesced(() => {
      sent++;
      return c.send();
    });
    wake();
    wake();
    await c.finishNext();
    expect(sent).toBe(2);
    await c.finishNext();
    wake();
    expect(sent).toBe(3);
  });
});
