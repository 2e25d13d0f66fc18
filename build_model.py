"""The command that trains, evaluates honestly and publishes the models: sentiment and ratings.

    python build_model.py [--data PATH] [--movies PATH] [--only text|ratings] [--out DIR]
                          [--classifier FAMILY] [--features SET] [--tune] [--seed N] [--feedback [URL]]
                          [--tolerance X] [--promote] [--keep N]

The work, and what each flag does, is in the training package: `training/build.py` runs it.
"""
import sys

from training.build import main

if __name__ == "__main__":
    sys.exit(main())
