"""Tokens: shown once, named by an id, revoked at once, expired on time; user names are owner ids."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from starling.control.state import ControllerState
from starling.errors import ConfigError


def test_a_token_works_until_it_is_revoked_or_expires(tmp_path: Path) -> None:
    state = ControllerState(tmp_path / "state.db")
    tokens = state.tokens_store
    token, token_id = tokens.create("user", "ada")
    short, _ = tokens.create("user", "ada", expires_in_s=0.2)
    found = tokens.principal(token)
    assert found is not None
    assert (found.role, found.user, found.token_id) == ("user", "ada", token_id)
    assert tokens.principal(short) is not None
    time.sleep(0.3)  # the expiry itself is what is tested
    assert tokens.principal(short) is None
    assert not tokens.revoke(token_id, user="bob")  # not bob's
    assert tokens.revoke(token_id, user="ada")
    assert tokens.principal(token) is None
    assert not tokens.revoke(token_id)  # once
    listed = tokens.list("ada")
    assert {t["id"] for t in listed} >= {token_id}
    assert all("token" not in t and "sha" not in str(t) for t in listed)
    state.close()


@pytest.mark.parametrize("name", ["operator", "metrics", "Ada", "a b", "", "x" * 65, "../x"])
def test_a_user_name_that_could_pass_for_another_is_refused(tmp_path: Path, name: str) -> None:
    state = ControllerState(tmp_path / "state.db")
    with pytest.raises(ConfigError):
        state.tokens_store.create("user", name)
    state.close()


def test_the_state_file_is_its_owners_only(tmp_path: Path) -> None:
    state = ControllerState(tmp_path / "state.db")
    state.tokens_store.create("user", "ada")
    state.close()
    assert (tmp_path / "state.db").stat().st_mode & 0o077 == 0
