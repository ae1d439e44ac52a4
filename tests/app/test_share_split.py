"""The split's validation part in the sidebar and in shared links: its flag and its share travel with the link."""

from __future__ import annotations

import pytest

from tests.app.test_pages import sidebar_widget

COMPARE = "app_pages/compare.py"


def test_link_parameters_carry_the_validation_part_and_its_share():
    from ui import share
    from ui.state import SplitConfig

    config = SplitConfig("random", 0.25, 1, 7, validation=True, valid_fraction=0.2)
    params = share.encode("MovieLens 100K", config, ["a1"], None, 10)
    assert params["valid"] == "1" and params["vf"] == "0.2"
    link = share.decode(params)
    assert not link.problems and SplitConfig(**link.split) == config
    off = share.decode(share.encode("MovieLens 100K", SplitConfig(), ["a1"], None, 10))
    assert off.split["validation"] is False and SplitConfig(**off.split) == SplitConfig()
    bad = share.decode({"runs": "x", "valid": "maybe", "vf": "0.9"})
    assert bad.split == {}
    assert bad.problems == ["'valid=maybe' is not 1 or 0", "'vf=0.9' lies outside 0.05–0.5"]


def test_a_link_with_a_validation_part_turns_it_on_in_a_fresh_sessions_sidebar(app):
    app.query_params.update({"runs": "0123456789abcdef", "split": "random", "valid": "1", "vf": "0.2"})
    app.run()
    app.switch_page(COMPARE).run()
    assert not app.exception, [e.value for e in app.exception]
    assert sidebar_widget(app, "checkbox", "Validation part").value is True
    assert sidebar_widget(app, "slider", "Validation share of train").value == pytest.approx(0.2)
    config = app.session_state["split_config"]
    assert config.validation and config.valid_fraction == pytest.approx(0.2)


def test_the_validation_share_shows_only_where_a_split_reads_it(app):
    from ui import state

    app.run()
    labels = lambda: [w.label for w in app.sidebar.slider]  # noqa: E731
    assert "Validation share of train" not in labels()
    sidebar_widget(app, "checkbox", "Validation part").check().run()
    sidebar_widget(app, "slider", "Validation share of train").set_value(0.15).run()
    config = app.session_state["split_config"]
    # the slider's 0.15000000000000002 is stored as the 0.15 a person chose: the run id hashes it
    assert config.valid_fraction == 0.15 and config.to_dict()["valid_fraction"] == 0.15
    assert state.split_text(config) == "random 80/20 holdout, with a 15 % validation part"
    sidebar_widget(app, "selectbox", "Split").set_value("leave_last").run()
    assert "Validation share of train" not in labels()  # leave-last validates on the n items before the test ones
    assert "valid_fraction" not in app.session_state["split_config"].to_dict()
