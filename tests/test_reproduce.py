"""The one-command reproduction covers every run behind Tables I, II and V exactly once."""

from amfl.models import MODELS
from amfl.reproduce import Row, main, paper_rows


def test_rows_cover_the_papers_tables_once():
    rows = paper_rows()
    assert len(rows) == len(set(rows)) == 25
    assert rows[0] == Row("nestedunet", "lovasz", True)  # AMFL
    baselines = {row.model for row in rows if row.loss == "ce" and not row.gan}
    assert baselines == {name for name, spec in MODELS.items() if spec.paper_name not in (None, "AMFL")}
    assert {row.loss for row in rows if row.model == "nestedunet" and not row.gan} == {
        "lovasz", "ce", "weighted_ce", "dice", "weighted_dice"
    }
    assert all(row.model in MODELS for row in rows)


def test_unknown_rows_are_refused(capsys, tmp_path):
    assert main(["--out", str(tmp_path), "--only", "nosuch-ce-gan"]) == 2
    assert "nosuch-ce-gan" in capsys.readouterr().err
