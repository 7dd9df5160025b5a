"""``python -m lfr_eval`` runs the ``lfr-eval`` command."""

from lfr_eval.cli import main

if __name__ == "__main__":
    main()
