"""``python -m medprint``: the same command as the ``medprint`` script."""

import sys


def run() -> None:
    """Run the command; Ctrl-C while the command itself is still loading ends in one line, too.

    A console script pointed here (``medprint.__main__:run``) gets the same
    protection; one pointed at ``medprint.cli:main`` imports ``medprint.cli``
    before any medprint code can catch the interrupt.
    """
    try:
        from .cli import main
    except KeyboardInterrupt:
        sys.stderr.write("medprint: aborted\n")
        sys.exit(1)
    main()


if __name__ == "__main__":
    run()
