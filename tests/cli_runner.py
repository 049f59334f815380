"""Run netatlas's CLI in-process, as a user's shell would, and capture what it said."""

from netatlas.cli import main


def run_cli(argv, capsys):
    """``netatlas ARGV`` in this process -> (exit code, stdout, stderr); arguments may be paths or numbers."""
    try:
        main([str(a) for a in argv])
        code = 0
    except SystemExit as exc:
        code = exc.code or 0
    captured = capsys.readouterr()
    return code, captured.out, captured.err
