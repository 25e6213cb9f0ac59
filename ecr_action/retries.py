"""One retry policy for everything the action retries: AWS API calls (botocore's standard mode), the
GitHub OIDC token request and the image push (tenacity).

Only what can succeed on a second try is retried (each caller says which exception means that); every
retry is logged the same way, "<what>: attempt N of M failed (<reason>); retrying in X s", with
exponential backoff and full jitter, bounded in attempts and, where a time budget is given, in time.
Imports nothing from the package.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt, stop_before_delay
from tenacity.wait import wait_random_exponential


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int  # in all, the first one included
    max_seconds: float | None = None  # no attempt starts past this; None: bounded by `attempts` alone
    first_wait: float = 1.0  # seconds; the wait before retry N is up to first_wait * 2**(N-1), jittered
    max_wait: float = 20.0

    @classmethod
    def from_inputs(cls, retries: int, retry_max_seconds: int) -> RetryPolicy:
        """The policy of the `retries` and `retry-max-seconds` inputs."""
        return cls(attempts=retries, max_seconds=retry_max_seconds)

    def botocore(self) -> dict[str, Any]:
        """botocore's `retries` configuration: its standard mode, `attempts` in all. botocore bounds its
        own waits (20 s at most), and a time budget would cut a call short, so `max_seconds` is not used."""
        return {"mode": "standard", "total_max_attempts": self.attempts}

    def retrying(
        self,
        what: str,
        transient: type[BaseException],
        *,
        log: Callable[[str], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> Retrying:
        """A tenacity loop retrying `transient` errors; the last one is re-raised once the policy gives up.
        Use it as `for attempt in policy.retrying(...): with attempt: ...`."""

        def before_sleep(state: RetryCallState) -> None:
            if log is not None:
                error = state.outcome.exception() if state.outcome else None
                log(retry_line(what, state.attempt_number, self.attempts, str(error), state.upcoming_sleep))

        stop = stop_after_attempt(self.attempts)
        if self.max_seconds is not None:
            # No attempt starts past the time budget: a wait that would end after it stops the retries instead.
            stop = stop | stop_before_delay(self.max_seconds)
        return Retrying(
            stop=stop,
            wait=wait_random_exponential(multiplier=self.first_wait, max=self.max_wait),
            retry=retry_if_exception_type(transient),
            before_sleep=before_sleep,
            sleep=sleep,
            reraise=True,
        )


def retry_line(what: str, attempt: int, attempts: int, reason: str = "", wait: float | None = None) -> str:
    """The log line of one retry; botocore tells neither the reason nor the wait, which are then left out."""
    line = f"{what}: attempt {attempt} of {attempts} failed"
    if reason:
        line += f" ({reason})"
    line += "; retrying"
    if wait is not None:
        line += f" in {wait:.1f} s"
    return line


def attempts_made(retrying: Retrying) -> int:
    """How many attempts a finished tenacity loop made."""
    return int(retrying.statistics.get("attempt_number", 1))


# The credentials stage keeps a short, fixed policy whatever `retries` says: the OIDC token endpoint is
# GitHub's, not AWS's, and a role that cannot be assumed should fail the job quickly.
CREDENTIALS = RetryPolicy(attempts=3, first_wait=0.5, max_wait=4.0)
