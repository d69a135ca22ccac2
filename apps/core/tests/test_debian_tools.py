"""A missing Debian program never errors a suite: `make test` installs it when it can, otherwise
it says once how to get it and the suites that need it skip with that command as the reason;
on CI, which always installs them, a missing one fails instead."""

import pytest

from scripts import debian_tools, devstack

MISSING = {"no-such-program-x": ("pkg-x", "the suite of x")}


def test_a_suite_skips_naming_the_command(monkeypatch):
    monkeypatch.setattr(debian_tools, "TOOLS", MISSING)
    monkeypatch.delenv("CI", raising=False)

    with pytest.raises(pytest.skip.Exception) as skipped:
        debian_tools.require("no-such-program-x")

    assert str(skipped.value) == (
        "no-such-program-x is not installed: `sudo apt-get install -y pkg-x`"
    )


def test_on_ci_a_missing_program_fails_the_suite(monkeypatch):
    monkeypatch.setattr(debian_tools, "TOOLS", MISSING)
    monkeypatch.setenv("CI", "true")

    with pytest.raises(pytest.fail.Exception) as failed:
        debian_tools.require("no-such-program-x")

    assert "(CI installs it in .ci/run)" in str(failed.value)


def test_a_program_is_found_in_sbin_off_the_path(monkeypatch):
    """A non-root user's PATH lacks /usr/sbin, where Debian puts nginx and pgbouncer."""
    monkeypatch.setenv("PATH", "/nonexistent")

    assert debian_tools.find("nologin") == "/usr/sbin/nologin"
    assert debian_tools.find("no-such-program-x") is None


def test_make_test_names_the_command_once_when_it_may_not_install(monkeypatch, capsys):
    monkeypatch.setattr(debian_tools, "TOOLS", MISSING)
    monkeypatch.setenv("INSTALL_TEST_PACKAGES", "no")

    devstack.provide_test_tools()

    assert capsys.readouterr().err == (
        "[devstack] will skip the suite of x: no-such-program-x is not installed\n"
        "[devstack] to run them: sudo apt-get install -y pkg-x\n"
    )
