"""`kgpub check URL`: a live deployment checked as its users meet it, one line per check.

The checks are a case table (server/check/cases.py CASES) that the tests share: each prints
`ok NAME` or `FAIL NAME: why`, then `N passed, N failed`. A loopback trap server
(server/check/trap.py) runs in the checking process for the SERVICE/LOAD/FROM check.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TextIO

from server.check.cases import BY_NAME, CASES, Case, Deployment
from server.check.client import CheckError
from server.check.trap import Trap

__all__ = ["BY_NAME", "CASES", "Case", "Outcome", "report", "run_checks"]


@dataclass(frozen=True)
class Outcome:
    """One check's result: its name, whether it passed, and why not."""

    name: str
    ok: bool
    why: str = ""

    def line(self) -> str:
        return f"ok {self.name}" if self.ok else f"FAIL {self.name}: {self.why}"


def run_checks(
    url: str,
    names: Sequence[str] = (),
    trap_host: str = "127.0.0.1",
    out: TextIO | None = None,
) -> list[Outcome]:
    """Run the named checks (all by default) against the deployment at url, in table order,
    printing each line to out as it is known. When the deployment does not answer (the
    `reachable` check), the other checks are not run."""
    chosen = [c for c in CASES if not names or c.name in names]
    outcomes: list[Outcome] = []
    with Trap(trap_host) as trap:
        deployment = Deployment(url, trap)
        for case in (BY_NAME["reachable"], *(c for c in chosen if c.name != "reachable")):
            try:
                case.run(deployment)
            except CheckError as exc:
                outcome = Outcome(case.name, False, " ".join(str(exc).split()))
            except (ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
                # What the deployment sent did not have the shape a check reads (JSON without
                # a key, a number that is not one ...): that check fails, the others run.
                why = f"an answer of an unexpected shape ({type(exc).__name__}: {exc})"
                outcome = Outcome(case.name, False, " ".join(why.split()))
            else:
                outcome = Outcome(case.name, True)
            if case in chosen or not outcome.ok:
                outcomes.append(outcome)
                if out is not None:
                    print(outcome.line(), file=out, flush=True)
            if case.name == "reachable" and not outcome.ok:
                break
    return outcomes


def report(outcomes: Sequence[Outcome], out: TextIO) -> int:
    """Print the closing `N passed, N failed` line; the exit status (1 when any failed)."""
    failed = sum(not o.ok for o in outcomes)
    print(f"{len(outcomes) - failed} passed, {failed} failed", file=out)
    return 1 if failed else 0
