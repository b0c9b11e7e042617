"""``python -m medprint``: the same command as the ``medprint`` script."""

import sys

try:
    from .cli import main
except KeyboardInterrupt:  # Ctrl-C while the command itself is still loading
    sys.stderr.write("medprint: aborted\n")
    sys.exit(1)

if __name__ == "__main__":
    main()
