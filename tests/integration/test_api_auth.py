"""Signing in to the API: tokens, refresh, revocation by disabling a user or changing a
password, the sign-in throttle, the audit of every attempt, and the secret's file mode."""

from __future__ import annotations

import stat
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api.services.auth import LoginThrottle
from catalog import Role, create_user, list_events
from tests.integration.api_world import PASSWORD, World, token_for, world


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


CLOCK = Clock()


@pytest.fixture(scope="module")
def w(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    throttle = LoginThrottle(per_name=3, per_address=6, window_seconds=60, clock=CLOCK)
    with world(tmp_path_factory.mktemp("api-auth"), throttle=throttle) as the_world:
        yield the_world


def _me(client: TestClient, token: str) -> int:
    return client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"}).status_code


def _add(w: World, name: str, role: Role = Role.clerk) -> None:
    with w.rt.db.write() as session:
        create_user(session, name=name, role=role, password=PASSWORD, actor="test")


def test_no_token_and_a_forged_token_are_401_in_the_error_shape(w: World) -> None:
    resp = w.client.get("/api/v1/records")
    assert resp.status_code == 401
    assert resp.headers["WWW-Authenticate"] == "Bearer"
    assert resp.json()["error"]["code"] == "not_authenticated"
    forged = w.tokens[Role.clerk][:-4] + "AAAA"
    assert _me(w.client, forged) == 401


def test_a_refresh_token_buys_new_tokens_and_is_no_access_token(w: World) -> None:
    pair = w.client.post(
        "/api/v1/auth/token", data={"username": "clerk1", "password": PASSWORD}
    ).json()
    assert pair["token_type"] == "bearer"
    assert _me(w.client, pair["refresh_token"]) == 401
    fresh = w.client.post("/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert fresh.status_code == 200
    assert _me(w.client, fresh.json()["access_token"]) == 200
    wrong = w.client.post("/api/v1/auth/refresh", json={"refresh_token": pair["access_token"]})
    assert wrong.status_code == 401


def test_disabling_a_user_revokes_their_tokens(w: World) -> None:
    _add(w, "leaver")
    token = token_for(w.client, "leaver")
    refresh = w.client.post(
        "/api/v1/auth/token", data={"username": "leaver", "password": PASSWORD}
    ).json()["refresh_token"]
    assert _me(w.client, token) == 200
    admin = w.headers(Role.admin)
    assert w.client.post("/api/v1/users/leaver/disable", headers=admin).status_code == 200
    assert _me(w.client, token) == 401
    assert w.client.post("/api/v1/auth/refresh", json={"refresh_token": refresh}).status_code == 401
    assert (
        w.client.post(
            "/api/v1/auth/token", data={"username": "leaver", "password": PASSWORD}
        ).status_code
        == 401
    )
    assert w.client.post("/api/v1/users/leaver/enable", headers=admin).status_code == 200
    assert _me(w.client, token_for(w.client, "leaver")) == 200


def test_changing_a_password_revokes_earlier_tokens(w: World) -> None:
    _add(w, "changer")
    old = token_for(w.client, "changer")
    resp = w.client.post(
        "/api/v1/auth/password",
        json={"current_password": PASSWORD, "new_password": "another-long-password"},
        headers={"Authorization": f"Bearer {old}"},
    )
    assert resp.status_code == 204
    assert _me(w.client, old) == 401
    assert _me(w.client, token_for(w.client, "changer", "another-long-password")) == 200
    # The admin setting a password does the same.
    newer = token_for(w.client, "changer", "another-long-password")
    set_pw = w.client.post(
        "/api/v1/users/changer/password",
        json={"password": "a-third-long-password"},
        headers=w.headers(Role.admin),
    )
    assert set_pw.status_code == 200
    assert _me(w.client, newer) == 401


def test_failed_sign_ins_are_throttled_per_name_then_the_window_passes(w: World) -> None:
    _add(w, "target")
    for _ in range(3):
        bad = w.client.post("/api/v1/auth/token", data={"username": "target", "password": "nope"})
        assert bad.status_code == 401
        assert bad.json()["error"]["message"] == "wrong user name or password"
    held = w.client.post("/api/v1/auth/token", data={"username": "target", "password": PASSWORD})
    assert held.status_code == 429
    assert held.json()["error"]["code"] == "too_many_requests"
    assert int(held.headers["Retry-After"]) > 0
    # Another name from the same address still signs in (3 failures < 6 per address).
    assert (
        w.client.post(
            "/api/v1/auth/token", data={"username": "clerk1", "password": PASSWORD}
        ).status_code
        == 200
    )
    CLOCK.now += 61
    ok = w.client.post("/api/v1/auth/token", data={"username": "target", "password": PASSWORD})
    assert ok.status_code == 200


def test_failed_sign_ins_are_throttled_per_address(w: World) -> None:
    CLOCK.now += 1000
    for i in range(6):
        name = f"nobody{i}"
        assert (
            w.client.post(
                "/api/v1/auth/token", data={"username": name, "password": "x"}
            ).status_code
            == 401
        )
    held = w.client.post("/api/v1/auth/token", data={"username": "clerk1", "password": PASSWORD})
    assert held.status_code == 429
    CLOCK.now += 61


def test_every_sign_in_is_audited_without_the_password(w: World) -> None:
    w.client.post("/api/v1/auth/token", data={"username": "auditor1", "password": "wrong-one"})
    token_for(w.client, "auditor1")
    with w.rt.db.read() as session:
        events = list_events(session, action="auth.login", actor="auditor1", limit=1000)
    outcomes = [e.outcome for e in events]
    assert "ok" in outcomes
    assert "denied" in outcomes
    for e in events:
        assert "wrong-one" not in str(e.detail)
        assert PASSWORD not in str(e.detail)


def test_the_token_secret_is_private_to_the_service(w: World) -> None:
    path = w.rt.settings.data_dir / "api-token-secret"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(path.read_bytes()) == 32


def test_unknown_routes_and_methods_answer_in_the_error_shape(w: World) -> None:
    missing = w.client.get("/api/v1/nothing-here")
    assert missing.status_code == 404
    assert missing.json() == {"error": {"code": "not_found", "message": "no such resource"}}
    wrong = w.client.delete("/api/v1/records", headers=w.headers(Role.clerk))
    assert wrong.status_code == 405
    assert set(wrong.json()["error"]) == {"code", "message"}


def test_ready_says_which_store_is_unreachable(w: World) -> None:
    assert w.client.get("/api/v1/ready").json() == {
        "ready": True,
        "checks": {"catalog": True, "primary": True, "replica": True},
    }
    replica = w.rt.settings.vault.replica.path
    assert replica is not None
    moved = replica.with_name("replica-away")
    replica.rename(moved)
    try:
        resp = w.client.get("/api/v1/ready")
        assert resp.status_code == 503
        assert resp.json()["checks"] == {"catalog": True, "primary": True, "replica": False}
    finally:
        moved.rename(replica)
    assert w.client.get("/api/v1/ready").status_code == 200
