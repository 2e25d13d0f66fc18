"""The command that trains, evaluates honestly and publishes the sentiment models.

    python build_model.py [--data PATH] [--out DIR] [--tune] [--seed N] [--feedback [URL]]
                          [--tolerance X] [--promote] [--keep N]

The work, and what each flag does, is in `training/build.py` (`training.build.main`).
"""
import sys

from training.build import main

if __name__ == "__main__":
    sys.exit(main())
