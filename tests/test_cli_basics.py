from click.testing import CliRunner

from costkit.cli.main import main


def test_help_lists_the_command_group():
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    assert "Usage" in result.output
