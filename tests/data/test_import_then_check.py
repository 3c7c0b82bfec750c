"""Acceptance: a CSV dataset the project has never seen imports and passes the gate."""

import csv
import random

import pytest

from pie_mlops.cli import main

INTENTS = {
    "billing": ["invoice", "refund", "charge", "payment", "card", "receipt"],
    "shipping": ["parcel", "courier", "delivery", "tracking", "address", "late"],
    "account": ["password", "login", "email", "profile", "locked", "username"],
}


def _write_tickets(path, multi_label=False, n=150, seed=3):
    rng = random.Random(seed)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["ticket_id", "body", "intent"])
        for i in range(n):
            names = rng.sample(sorted(INTENTS), rng.choice([1, 2]) if multi_label else 1)
            words = [w for name in names for w in rng.sample(INTENTS[name], 3)] + ["please", "help", f"#{i}"]
            rng.shuffle(words)
            w.writerow([f"T{i:04d}", "My " + " ".join(words) + ".", ";".join(names)])
    return path


def _cli(args, capsys):
    """Exit code and output of `pie-mlops ARGS`, run in-process (GX is imported once per session)."""
    try:
        main(args)
        code = 0
    except SystemExit as exc:
        code = exc.code
    return code, capsys.readouterr()


@pytest.mark.parametrize("multi_label", [False, True], ids=["single_label", "multi_label"])
def test_unseen_csv_imports_and_passes_the_gate(tmp_path, capsys, multi_label):
    src = _write_tickets(tmp_path / "tickets.csv", multi_label)
    data, reports = str(tmp_path / "data"), str(tmp_path / "reports")
    args = ["import", str(src), "--name", "tickets", "--text-col", "body", "--label-col", "intent",
            "--data-dir", data]
    if multi_label:
        args += ["--label-sep", ";"]
    code, out = _cli(args, capsys)
    assert code == 0, out.err
    code, out = _cli(["check", "tickets", "--data-dir", data, "--report-dir", reports], capsys)
    assert code == 0, out.out + out.err
    assert "tickets: passed" in out.out
    assert (tmp_path / "reports" / "tickets" / "result.json").is_file()
    assert (tmp_path / "reports" / "tickets" / "data_docs" / "index.html").is_file()
