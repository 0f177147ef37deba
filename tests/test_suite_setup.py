"""The test suite's own setup (setup.cfg): the xdist groups that keep costly module fixtures on one worker."""

import pytest

pytestmark = pytest.mark.xdist_group("suite_setup")


def test_xdist_groups_reach_the_scheduler(request):
    """Under README's `pytest -n 2`, `--dist loadgroup` (setup.cfg's addopts) sends a module's
    grouped tests to one worker by a group suffix on their ids. pytest 9.2 broke that suffix
    (pytest-xdist issue 1386): nothing failed, but the SkeletonNet runs, the CANet exports and
    the served models were built once per worker. This fails if the grouping is lost again."""
    if not hasattr(request.config, "workerinput"):
        pytest.skip("runs under pytest-xdist workers only (pytest -n N)")
    assert request.config.getvalue("loadgroup"), "the suite runs with --dist loadgroup (setup.cfg addopts)"
    assert request.node.nodeid.endswith("@suite_setup"), (
        f"{request.node.nodeid}: the xdist_group mark did not reach the scheduler; a pytest / pytest-xdist "
        "release broke --dist loadgroup (see setup.cfg's pin)")
