import pytest

from mils import registry


def test_create_builds_with_options():
    @registry.register("widget", "test-square")
    def square(side: int = 2):
        return side * side

    assert registry.create("widget", "test-square", side=3) == 9
    assert "test-square" in registry.known("widget")


def test_unknown_name_lists_known_names_and_closest_match():
    import mils.scorers  # noqa: F401

    with pytest.raises(registry.UnknownComponentError) as err:
        registry.create("scorer", "open-clip")
    message = str(err.value)
    assert "concept" in message and "open_clip" in message and "Did you mean 'open_clip'" in message


def test_registering_a_different_factory_twice_is_refused():
    registry.register("widget", "test-once")(lambda: 1)
    with pytest.raises(ValueError, match="already registered"):
        registry.register("widget", "test-once")(lambda: 2)
