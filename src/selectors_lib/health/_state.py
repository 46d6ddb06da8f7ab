"""Hysteresis: turning a stream of probe observations into eject/readmit decisions.

Pure and clock-free: every method takes the time as an argument, so the same
sequence of observations always gives the same decisions (the stateful tests
drive it with a fake clock). The :class:`~selectors_lib.health.HealthMonitor`
feeds it probe results and applies what it decides with ``Router.set_health``.

Rules, per endpoint:

- ``eject_after`` consecutive bad observations eject it (reason ``lag`` or
  ``probe``, from the observation that tipped it over).
- ``readmit_after`` consecutive good observations readmit it. One bad
  observation in between starts the count again, so a flapping replica stays
  out instead of bouncing its keys back and forth.
- An observation without a verdict (``ok=None``: e.g. the master could not be
  read, so no lag is known) changes nothing and breaks no streak.
- A *pinned* endpoint (ejected by an operator or another system) stays out
  whatever the probes say; probes keep tracking it underneath, and unpinning
  hands it back to them with a fresh start.

Master churn: when every replica of a group (two or more) with a master gives a
bad observation in the same round, the group is flagged as churning. The replicas
are ejected as usual, so their state stays truthful for metrics and alerts;
the pools' panic rule then routes to all of them as if healthy (a pool whose
replicas are all down always panics), so reads keep flowing and no key moves.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

import attrs

from selectors_lib._consistent import Position
from selectors_lib._pool import EndpointHealth

__all__ = ["EndpointState", "HealthTracker", "Observation", "Policy", "RoundResult"]


@attrs.frozen
class Policy:
    """How many observations in a row change an endpoint's state.

    Args:
        eject_after: Consecutive bad observations that eject.
        readmit_after: Consecutive good observations that readmit.
    """

    eject_after: int = 3
    readmit_after: int = 2

    def __attrs_post_init__(self) -> None:
        if self.eject_after < 1 or self.readmit_after < 1:
            raise ValueError("eject_after and readmit_after must be at least 1")


@attrs.frozen
class Observation:
    """What one probe saw of one endpoint in one round.

    Args:
        ok: True (good), False (bad) or None (no verdict: nothing is known).
        reason: On a bad observation, ``lag`` or ``probe``.
        detail: Free text for operators (the error, the lag...).
        lag_bytes: Replication lag, when the probe measures it.
        position: The replica's replication position, when the probe reads one
            (for read-your-writes tokens; independent of the verdict).
    """

    ok: bool | None
    reason: str = "probe"
    detail: str = ""
    lag_bytes: int | None = None
    position: Position | None = None

    @staticmethod
    def merge(observations: tuple[Observation, ...]) -> Observation:
        """Combine several probes' views of one endpoint: any bad one wins.

        Args:
            observations: At least one observation.

        Returns:
            The first bad observation, else the first good one, else the first.
        """
        for wanted in (False, True):
            for obs in observations:
                if obs.ok is wanted:
                    return obs
        return observations[0]


@attrs.frozen
class EndpointState:
    """The tracker's view of one endpoint.

    Args:
        ejected: True when the probes have ejected it.
        pinned: True when something outside the probes holds it down.
        bad_streak: Consecutive bad observations so far.
        good_streak: Consecutive good observations so far.
        reason: Why the probes ejected it (None when not ejected).
        detail: The latest detail for operators.
        since: Time of the last change of ``healthy``.
        lag_bytes: Latest known replication lag.
    """

    ejected: bool = False
    pinned: bool = False
    bad_streak: int = 0
    good_streak: int = 0
    reason: str | None = None
    detail: str = ""
    since: float = 0.0
    lag_bytes: int | None = None

    @property
    def healthy(self) -> bool:
        """Whether the endpoint should take traffic."""
        return not self.ejected and not self.pinned

    def to_health(self) -> EndpointHealth:
        """The router's view of this state (only meaningful when not pinned)."""
        if not self.ejected:
            return EndpointHealth(True, None, self.detail, self.since)
        return EndpointHealth(False, self.reason, self.detail, self.since)

    def observe(self, obs: Observation, policy: Policy, now: float) -> EndpointState:
        """Return the state after ``obs`` (pure).

        Args:
            obs: The observation.
            policy: The thresholds.
            now: The time, recorded when the state changes.

        Returns:
            The new state.
        """
        lag = obs.lag_bytes if obs.lag_bytes is not None else self.lag_bytes
        if obs.ok is None:
            return attrs.evolve(self, detail=obs.detail or self.detail, lag_bytes=lag)
        if obs.ok:
            good, bad = self.good_streak + 1, 0
        else:
            good, bad = 0, self.bad_streak + 1
        new = attrs.evolve(self, good_streak=good, bad_streak=bad, lag_bytes=lag)
        if not self.ejected and bad >= policy.eject_after:
            return attrs.evolve(new, ejected=True, reason=obs.reason, detail=obs.detail, since=now)
        if self.ejected and good >= policy.readmit_after:
            return attrs.evolve(new, ejected=False, reason=None, detail=obs.detail, since=now)
        if not obs.ok or not self.ejected:
            # Keep the detail current (the lag now), but keep the reason of the ejection.
            new = attrs.evolve(new, detail=obs.detail)
        return new


@attrs.frozen
class RoundResult:
    """What one round of observations changed.

    Args:
        changed: ``(endpoint id, new state)`` for each endpoint whose ``healthy``
            flipped, sorted by id.
        churning: Groups whose replicas were all bad this round, sorted.
        churn_started: Groups that started churning this round.
        churn_ended: Groups that stopped churning this round.
    """

    changed: tuple[tuple[str, EndpointState], ...] = ()
    churning: tuple[str, ...] = ()
    churn_started: tuple[str, ...] = ()
    churn_ended: tuple[str, ...] = ()


class HealthTracker:
    """Per-endpoint hysteresis and per-group churn detection.

    Not thread-safe: one owner (a monitor) feeds it.

    Args:
        policy: The thresholds.
    """

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self._states: dict[str, EndpointState] = {}
        self._churning: frozenset[str] = frozenset()

    @property
    def states(self) -> Mapping[str, EndpointState]:
        """A copy of every tracked endpoint's state."""
        return dict(self._states)

    @property
    def churning(self) -> tuple[str, ...]:
        """Groups whose replicas were all bad in their latest round, sorted."""
        return tuple(sorted(self._churning))

    def state(self, endpoint_id: str) -> EndpointState:
        """The state of one endpoint (a fresh healthy one when never seen)."""
        return self._states.get(endpoint_id, EndpointState())

    def restore(self, endpoint_id: str, state: EndpointState) -> None:
        """Replace an endpoint's state (a follower adopting the fleet leader's verdict)."""
        self._states[endpoint_id] = state

    def pin(self, endpoint_id: str, now: float) -> bool:
        """Hold an endpoint down regardless of observations.

        Returns:
            True if this changed whether it is healthy.
        """
        state = self.state(endpoint_id)
        if state.pinned:
            return False
        self._states[endpoint_id] = attrs.evolve(state, pinned=True, since=now)
        return state.healthy

    def unpin(self, endpoint_id: str, now: float) -> bool:
        """Release a pin (or a probe ejection) and give the endpoint a fresh start.

        Whoever readmitted the endpoint vouched for it, so it is healthy again
        and the probes need ``eject_after`` new bad observations to eject it.

        Returns:
            True if this changed whether it is healthy.
        """
        state = self.state(endpoint_id)
        if state.healthy:
            return False
        self._states[endpoint_id] = EndpointState(since=now, lag_bytes=state.lag_bytes)
        return True

    def observe_round(
        self,
        groups: Mapping[str, Mapping[str, Observation]],
        now: float,
        *,
        churn_groups: Collection[str] | None = None,
    ) -> RoundResult:
        """Apply one round: every group's observations of its endpoints.

        An endpoint observed by several groups gets one merged observation per
        round (any bad one wins), so a second probe does not double its count.

        Args:
            groups: Observations by group (probe) name, then by endpoint id.
            now: The time.
            churn_groups: The groups that can churn (those with a master); None
                means all of them.

        Returns:
            Which endpoints flipped, and the churn status of the groups.
        """
        by_endpoint: dict[str, list[Observation]] = {}
        # Sorted: nothing here may depend on mapping order.
        for group in sorted(groups):
            for endpoint_id, obs in sorted(groups[group].items()):
                by_endpoint.setdefault(endpoint_id, []).append(obs)
        changed: list[tuple[str, EndpointState]] = []
        for endpoint_id in sorted(by_endpoint):
            old = self.state(endpoint_id)
            merged = Observation.merge(tuple(by_endpoint[endpoint_id]))
            new = old.observe(merged, self.policy, now)
            self._states[endpoint_id] = new
            if new.healthy != old.healthy:
                changed.append((endpoint_id, new))
        now_churning = {
            group
            for group, observations in groups.items()
            if (churn_groups is None or group in churn_groups)
            and len(observations) >= 2
            and all(o.ok is False for o in observations.values())
        }
        was = self._churning
        # Groups absent from this round keep their flag: nothing new is known of them.
        churning = (was - set(groups)) | now_churning
        self._churning = frozenset(churning)
        return RoundResult(
            changed=tuple(changed),
            churning=tuple(sorted(churning)),
            churn_started=tuple(sorted(now_churning - was)),
            churn_ended=tuple(sorted((was & set(groups)) - now_churning)),
        )
