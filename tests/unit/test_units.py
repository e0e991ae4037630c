import pytest

from streamchaos.units import parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("500ms", 0.5), ("30s", 30), ("10m", 600), ("2h", 7200), ("1d", 86400), (3, 3), ("1.5", 1.5)],
)
def test_parse_duration(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["soon", "-1s", "5 minutes", True, None, [1]])
def test_parse_duration_refuses(bad):
    with pytest.raises(ValueError):
        parse_duration(bad)
