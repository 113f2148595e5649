from click.testing import CliRunner

from photo_guard import __version__
from photo_guard.cli import cli


def test_help_and_version():
    runner = CliRunner()
    assert runner.invoke(cli, ["--help"]).exit_code == 0
    result = runner.invoke(cli, ["--version"])
    assert result.exit_code == 0 and __version__ in result.output


def test_cli_defaults_are_the_library_defaults():
    from photo_guard import cli
    from photo_guard.encoders import DEFAULT_ENCODERS
    from photo_guard.protect import ProtectConfig

    assert ",".join(DEFAULT_ENCODERS) == cli._ENSEMBLE
    assert ProtectConfig().steps == cli._STEPS
