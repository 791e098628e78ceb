"""Property tests of the schema emitter: whatever supported types a model combines, the schema is
structural and a value of the model survives the API server's pruning; timestamps round-trip."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal, Optional

from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, create_model

from jangar.api import openapi, structural
from jangar.api.meta import KubeModel, OpenModel
from jangar.api.schema import FreeForm, Int32, IntOrStr, Timestamp
from tests.unit.api.schema_sim import populated, prune

LEAVES: list[Any] = [str, int, bool, float, Int32, Timestamp, IntOrStr, FreeForm, Literal["a", "b"]]
_counter = iter(range(10**9))


def _model(fields: dict[str, Any], base: type[BaseModel]) -> type[BaseModel]:
    definitions: dict[str, Any] = {name: (tp, None) for name, tp in fields.items()}
    return create_model(f"Generated{next(_counter)}", __base__=base, **definitions)


def _types() -> st.SearchStrategy[Any]:
    def extend(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        return st.one_of(
            children.map(lambda t: list[t]),  # type: ignore[valid-type]
            children.map(lambda t: dict[str, t]),  # type: ignore[valid-type]
            st.tuples(
                st.dictionaries(
                    st.from_regex(r"[a-z][a-zA-Z]{0,8}", fullmatch=True), children, min_size=1, max_size=4
                ),
                st.sampled_from([KubeModel, OpenModel]),
            ).map(lambda args: _model(*args)),
        )

    return st.recursive(st.sampled_from(LEAVES), extend, max_leaves=12)


@settings(max_examples=60, deadline=None)
@given(
    st.dictionaries(st.from_regex(r"[a-z][a-z_]{0,8}[a-z]", fullmatch=True), _types(), min_size=1, max_size=5)
)
def test_any_supported_model_gives_a_structural_schema_that_keeps_its_values(fields: dict[str, Any]) -> None:
    model = _model({name: Optional[tp] for name, tp in fields.items()}, KubeModel)  # noqa: UP045
    schema = openapi.model_schema(model)
    assert structural.violations(schema) == []
    value = model.model_validate(populated(model)).model_dump(mode="json", by_alias=True, exclude_none=True)
    assert prune(schema, value) == value


@given(st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(9999, 1, 1), timezones=st.just(UTC)))
def test_timestamps_round_trip(moment: datetime) -> None:
    class Stamped(KubeModel):
        at: Timestamp

    wire = Stamped(at=moment).to_k8s()["at"]
    assert wire.endswith("Z")
    assert Stamped.model_validate({"at": wire}).at == moment
