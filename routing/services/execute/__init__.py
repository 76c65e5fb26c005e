"""Producing one caption, in four parts a newcomer can read one at a time:

- ``claim``: load the caption and take it with one conditional UPDATE (pending -> running), so a
  twice-delivered task does nothing the second time; the routes to walk and the deadline.
- ``request``: the request for one provider, fitted to what that provider accepts (image format
  and size, parameter ranges), with notes of what was changed for the call log.
- ``walk``: the loop over the routes (cache, breaker, budget, the call, retry / fall back /
  finish) and the caption's final state.
- ``ledger``: the call log (one ``ModelCall`` per attempt, closed exactly once) and the money
  (reservations moved to the run's spend once; lost calls counted at their estimate).
"""

from routing.services.execute.claim import Outcome, Where, caption_claim
from routing.services.execute.ledger import calls_abandon, run_maybe_finish
from routing.services.execute.walk import Execution, caption_execute, caption_execute_batch

__all__ = [
    "Execution",
    "Outcome",
    "Where",
    "calls_abandon",
    "caption_claim",
    "caption_execute",
    "caption_execute_batch",
    "run_maybe_finish",
]
