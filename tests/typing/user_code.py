"""Code a user writes against selectors_lib; must pass ``mypy --strict``."""

from __future__ import annotations

from selectors_lib import (
    ConfigError,
    Criteria,
    Decision,
    Endpoint,
    Event,
    FleetEvent,
    HealthEvent,
    Router,
    config_fingerprint,
    load_router,
)
from selectors_lib.hashing import ALGORITHMS, DEFAULT_ALGORITHM, build, jump_hash


def route(router: Router, user: str | None, app: str | None) -> str:
    endpoint: Endpoint = router.select(Criteria(authenticated_user=user, application=app))
    return endpoint.url


def why(router: Router) -> list[str]:
    decision: Decision = router.explain(Criteria(origin="deck", attributes={"x-tenant": "acme"}))
    return [f"{t.name}: {t.reason}" for t in decision.considered if t.matched]


def load_or_keep(router: Router, path: str) -> bool:
    try:
        router.reload(path)
    except ConfigError as exc:
        for issue in exc.issues:
            print(issue.path, issue.message)
        return False
    return True


def on_event(event: Event) -> None:
    if isinstance(event, HealthEvent) and not event.healthy:
        print(f"{event.endpoint_id} ejected: {event.reason}")
    elif isinstance(event, FleetEvent) and event.mode == "local":
        print(f"probing locally at generation {event.generation}: {event.detail}")


def fleet_drift(routers: list[Router]) -> bool:
    fingerprints: set[str] = {config_fingerprint(r.config) for r in routers}
    return len(fingerprints) > 1 or any(r.fingerprint not in fingerprints for r in routers)


def main() -> None:
    router = load_router(
        {"routes": [{"name": "d", "default": True, "target": {"endpoints": [{"url": "http://a"}]}}]}
    )
    unsubscribe = router.events.subscribe(on_event)
    router.mark_down("http://a", reason="lag", detail="9 MB")
    unsubscribe()
    table = build(DEFAULT_ALGORITHM, ["a", "b", "c"], weights={"a": 2, "b": 1, "c": 1})
    host: str = table.lookup("alice")
    bucket: int = jump_hash(12345, 10)
    print(route(router, "alice", None), why(router), host, bucket, ALGORITHMS)


def gateway(router: Router) -> object:
    from selectors_lib.gateway import GatewaySettings, RetrySettings, RouteSettings, SelectorsProxy

    settings = GatewaySettings(defaults=RouteSettings(retries=RetrySettings(tries=2)))
    proxy = SelectorsProxy(router, settings=settings, debug_header="X-Route")
    open_now: dict[str, int] = proxy.connections()
    return proxy if open_now is not None else None


def read_your_writes(router: Router, redis_client: object, user: str) -> str:
    from selectors_lib import consistency

    token: consistency.Token = consistency.after_write(redis_client)
    criteria = consistency.with_token(Criteria(authenticated_user=user), token)
    decision = router.explain(criteria)
    behind = [s.behind for s in decision.stale if s.behind is not None]
    parsed: consistency.Token | None = consistency.Token.parse(str(token))
    assert parsed is None or parsed.offset >= 0
    return f"{consistency.select(router, criteria).id} {decision.consistency} {sum(behind)}"
