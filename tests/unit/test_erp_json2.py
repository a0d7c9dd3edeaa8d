"""JSON-2's binding of a body to a method, from Odoo 19's documented rules (no server)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledgerdrill.odoo_api import REQUIRED, SIGNATURES, json2_body
from ledgerdrill.platforms.sandbox.erp import json2
from ledgerdrill.platforms.sandbox.erp.errors import (
    AccessError,
    MissingError,
    ServerError,
    ValidationError,
)
from ledgerdrill.platforms.sandbox.erp.spec import MODELS


def test_a_record_method_gets_its_ids_first_and_named_parameters_as_given() -> None:
    call = json2.bind("account.move", "read", {"ids": [3, 4], "fields": ["name"],
                                               "context": {"lang": "en_US"}})  # fmt: skip
    assert call.args == [[3, 4]] and call.kwargs == {"fields": ["name"]}
    assert call.context == {"lang": "en_US"}


def test_a_model_method_takes_no_ids() -> None:
    call = json2.bind("res.partner", "search_read", {"domain": [], "limit": 2})
    assert call.args == [] and call.kwargs == {"domain": [], "limit": 2}
    with pytest.raises(json2.Json2Error) as refused:
        json2.bind("res.partner", "search_read", {"ids": [1]})
    assert refused.value.status == 422


@pytest.mark.parametrize(
    ("model", "method", "body", "status"),
    [
        ("res.nothing", "search", {}, 404),
        ("res.partner", "unlink", {}, 404),  # Odoo has it; this ERP does not serve it
        ("res.partner", "_private", {}, 404),
        ("res.partner", "search", {}, 422),  # domain is required
        ("res.partner", "search", {"domain": [], "colour": 1}, 422),
        ("account.move", "action_post", {"ids": ["1"]}, 422),
        ("account.move", "action_post", {"ids": [1], "context": []}, 422),
        ("account.move", "action_post", [1], 400),
    ],
)
def test_what_odoo_refuses_and_with_which_status(
    model: str, method: str, body: object, status: int
) -> None:
    with pytest.raises(json2.Json2Error) as refused:
        json2.bind(model, method, body)
    assert refused.value.status == status, refused.value.message
    code, error = json2.error(refused.value)
    assert code == status and set(error) == {"name", "message", "arguments", "context", "debug"}


NAMES = st.sampled_from(["limit", "domain", "offset", "fields", "colour", "order"]) | st.text(
    min_size=1, max_size=12
).filter(lambda name: name not in ("ids", "context"))


@given(st.dictionaries(NAMES, st.integers(), max_size=4))
def test_a_parameter_outside_the_signature_is_always_422(extra: dict[str, int]) -> None:
    names = {name for name, _ in json2.SIGNATURES["search_count"].params}
    body = {"domain": [], **extra}
    if set(extra) - names:
        with pytest.raises(json2.Json2Error) as refused:
            json2.bind("res.partner", "search_count", body)
        assert refused.value.status == 422
    else:
        assert json2.bind("res.partner", "search_count", body).kwargs == body


def test_every_served_method_of_every_model_has_a_signature() -> None:
    # a method a model serves over RPC but JSON-2 would 404 is a gap between the APIs
    for spec in MODELS.values():
        assert spec.methods <= json2.SIGNATURES.keys(), spec.name


@pytest.mark.parametrize(
    ("header", "key"),
    [("bearer abc123", "abc123"), ("Bearer  abc123 ", "abc123"), ("BEARER k", "k")],
)
def test_the_bearer_key_is_read_from_the_header(header: str, key: str) -> None:
    assert json2.bearer_key(header) == key


@pytest.mark.parametrize("header", [None, "", "bearer", "Basic abc", "bearer   "])
def test_no_bearer_key_is_401(header: str | None) -> None:
    with pytest.raises(json2.Json2Error) as refused:
        json2.bearer_key(header)
    assert refused.value.status == 401 and refused.value.message == "Invalid apikey"


@pytest.mark.parametrize(
    ("exc", "status"),
    [
        (ValidationError("duplicate ref"), 422),
        (AccessError("no"), 403),
        (MissingError("gone"), 404),
        (ServerError("boom"), 500),
        (RuntimeError("a bug"), 500),
    ],
)
def test_odoo_exceptions_carry_their_status(exc: Exception, status: int) -> None:
    code, error = json2.error(exc, {"lang": "en_US"})
    assert code == status and error["context"] == {"lang": "en_US"}


def test_create_answers_a_list_of_ids_even_for_one_record() -> None:
    assert json2.result("create", 7) == [7]
    assert json2.result("create", [7, 8]) == [7, 8]
    assert json2.result("search_count", 7) == 7


# -- the harness's side: a positional call named for JSON-2 (odoo_api.json2_body) --------
def test_positional_calls_are_named_as_odoo_names_them() -> None:
    assert json2_body("search_read", [[("code", "=", "MISC")]], {"fields": ["id"]}) == {
        "domain": [("code", "=", "MISC")], "fields": ["id"],
    }  # fmt: skip
    assert json2_body("action_post", [[4, 5]]) == {"ids": [4, 5]}
    assert json2_body("read", [[4], ["name"]]) == {"ids": [4], "fields": ["name"]}
    assert json2_body("create", [{"name": "x"}]) == {"vals_list": [{"name": "x"}]}
    assert json2_body("context_get") == {}


@pytest.mark.parametrize(
    ("method", "args", "kwargs"),
    [
        ("unlink", [[1]], {}),  # no signature known: never a guessed name
        ("search_count", [[], 5, "extra"], {}),  # more positional arguments than it has
        ("search", [[]], {"domain": []}),  # the same argument twice
    ],
)
def test_a_call_that_cannot_be_named_is_the_callers_bug(
    method: str, args: list[object], kwargs: dict[str, object]
) -> None:
    with pytest.raises(ValueError, match=method):
        json2_body(method, args, kwargs)


@given(st.lists(st.integers(min_value=1), max_size=5), st.sampled_from(sorted(SIGNATURES)))
def test_what_the_client_sends_the_server_binds(ids: list[int], method: str) -> None:
    # the harness's naming and the ERP's binding agree for every method: the required
    # parameters given positionally come out as the call the server runs
    signature = SIGNATURES[method]
    required = [[] for name, default in signature.params if default is REQUIRED]
    args = required if signature.model_level else [ids, *required]
    model = next(spec.name for spec in MODELS.values() if method in spec.methods)
    call = json2.bind(model, method, json2_body(method, args))
    assert call.method == method
    assert call.args == ([] if signature.model_level else [ids])
