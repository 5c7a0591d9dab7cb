/**
 * `send` now; called again while a send is in flight, once more when it ends (however many calls came
 * meanwhile). For wake-ups whose payload carries nothing: a listener woken after the last call's cause
 * sees it, and a burst costs two sends instead of one each. Never rejects: a lost wake-up is what the
 * woken side's own polling is for.
 */
export function coalesced(send: () => Promise<unknown>): () => void {
  let inFlight = false;
  let again = false;
  const run = () => {
    inFlight = true;
    again = false;
    send()
      .catch(() => {})
      .finally(() => {
        inFlight = false;
        if (again) run();
      });
  };
  return () => {
    if (inFlight) again = true;
    else run();
  };
}
