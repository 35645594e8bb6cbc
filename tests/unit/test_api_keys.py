"""API keys: parsed from PLATFORM_API_KEYS with errors that never show a key, matched in
constant time; and the addresses `platform api` may serve without keys."""

from __future__ import annotations

import secrets

import pytest
from hypothesis import given
from hypothesis import strategies as st

from platform_core.errors import ConfigurationError
from platform_core.web import keys
from platform_core.web.server import check_address
from tests.support import PlatformEnv

KEY = st.text(st.characters(min_codepoint=33, max_codepoint=126, exclude_characters=":"),
              min_size=16, max_size=40)
SCOPES = st.sets(st.sampled_from(keys.SCOPES))


def test_scopes_default_to_read_and_submit() -> None:
    a, b = "a" * 16, "b" * 20
    parsed = keys.parse(f"{a} {b}:revoke,read")
    assert [(k.number, k.scopes) for k in parsed] == [
        (1, frozenset({"read", "submit"})), (2, frozenset({"revoke", "read"}))]
    assert keys.find(parsed, b).label == "key 2"  # type: ignore[union-attr]
    assert keys.find(parsed, a + "x") is None


@given(st.lists(st.tuples(KEY, SCOPES), min_size=1, max_size=5, unique_by=lambda e: e[0]),
       st.data())
def test_every_configured_key_is_found_with_its_scopes(
        entries: list[tuple[str, set[str]]], data: st.DataObject) -> None:
    text = " ".join(f"{key}:{','.join(sorted(scopes))}" if scopes else key
                    for key, scopes in entries)
    parsed = keys.parse(text)
    index = data.draw(st.integers(0, len(entries) - 1))
    key, scopes = entries[index]
    found = keys.find(parsed, key)
    assert found is not None and found.number == index + 1
    assert found.scopes == (frozenset(scopes) or keys.DEFAULT_SCOPES)
    assert keys.find(parsed, key[:-1]) is None


@given(st.text(st.characters(min_codepoint=33, max_codepoint=126, exclude_characters=":"),
               min_size=4, max_size=15))
def test_a_short_key_is_refused_without_being_shown(short: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        keys.parse(f"{secrets.token_urlsafe(20)} {short}:read")
    (problem,) = caught.value.problems
    assert problem.startswith("PLATFORM_API_KEYS entry 2 is shorter than 16 characters")
    assert short not in problem.replace("PLATFORM_API_KEYS", "")


def test_an_unknown_scope_is_named() -> None:
    with pytest.raises(ConfigurationError) as caught:
        keys.parse(f"{secrets.token_urlsafe(20)}:read,admin")
    assert caught.value.problems == [
        "PLATFORM_API_KEYS entry 1 names unknown scope(s) admin; scopes are read, submit, revoke"]


@pytest.mark.parametrize("address", ["127.0.0.1", "::1", "[::1]", "localhost", "127.0.0.2"])
def test_loopback_may_serve_without_keys(address: str) -> None:
    check_address(address, no_auth=True)


@pytest.mark.parametrize("address", ["0.0.0.0", "::", "", "10.1.2.3"])
def test_anything_else_may_not(address: str) -> None:
    with pytest.raises(ConfigurationError, match="--no-auth is refused"):
        check_address(address, no_auth=True)
    check_address(address, no_auth=False)  # with keys, any address


def test_platform_api_refuses_before_it_listens(platform_env: PlatformEnv) -> None:
    everywhere = platform_env.run("api", "--host", "0.0.0.0", "--no-auth", "--port", "1")
    assert everywhere.returncode != 0
    assert "--no-auth is refused on 0.0.0.0" in everywhere.stderr
    no_keys = platform_env.run("api", "--port", "1")
    assert no_keys.returncode != 0 and "needs at least one key" in no_keys.stderr
    platform_env.set(PLATFORM_API_KEYS="tiny-secret")
    short = platform_env.run("api", "--port", "1")
    assert "entry 1 is shorter than 16 characters" in short.stderr
    assert "tiny-secret" not in short.stderr + short.stdout
