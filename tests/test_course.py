"""The notebooks read as one course (issue 17): every notebook has the same frame.

Checked on the executed ``.ipynb`` files (their ``.py`` twins hold the same cells, see
test_notebook_pairs.py):

* a header: the title, the links line of :func:`aqaa_ref.course.links` (previous, next, the
  paper's part), what you will build, prerequisites, and the run time warm and cold;
* the roadmap figure with this notebook marked (``roadmap(N)``), drawn;
* "What you should see" stated before key outputs (at least twice);
* exercises (at least three), each followed by a solution cell that is collapsed in
  Jupyter (``source_hidden``) and tagged ``solution``; nbval runs the solutions like any cell;
* a closing summary that names the next notebook;
* at least one ``# NBVAL_CHECK_OUTPUT`` cell, so a broken concept fails CI;
* outputs that print no absolute path of the machine that executed them;
* widget output only with the widget state saved.
"""
import json
import re
from pathlib import Path

import pytest

from aqaa_ref.course import LESSONS, PAPER, lesson, links

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"


def load(number: int) -> dict:
    return json.loads((NOTEBOOKS / lesson(number).file).read_text())


def source(cell) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def markdown(nb) -> list[str]:
    return [source(c) for c in nb["cells"] if c["cell_type"] == "markdown"]


NUMBERS = [les.number for les in LESSONS]


def test_the_course_table_matches_the_notebook_files():
    assert sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb")) == [les.stem for les in LESSONS]
    assert [les.number for les in LESSONS] == list(range(len(LESSONS)))
    assert lesson(0).previous is None and lesson(10).next is None
    assert lesson(4).next.number == 5 and lesson(4).previous.number == 3
    with pytest.raises(ValueError, match="not 11"):
        lesson(11)


def test_links_name_existing_notebooks_and_the_paper():
    for les in LESSONS:
        line = links(les.number)
        assert PAPER in line
        for target in re.findall(r"\]\(([^)]+\.ipynb)\)", line):
            assert (NOTEBOOKS / target).exists(), f"{les.file}: link to missing {target}"


@pytest.mark.parametrize("number", NUMBERS, ids=lambda n: f"{n:02d}")
def test_header_states_goal_prerequisites_run_time_and_links(number):
    head = source(load(number)["cells"][0])
    assert head.startswith(f"# {number:02d} · "), "the first cell is the title"
    assert links(number) in head, "the links line of aqaa_ref.course.links, verbatim"
    for part in ("**You will build**", "**Prerequisites**", "**Run time**"):
        assert part in head, f"header lacks {part}"
    run_time = head.split("**Run time**", 1)[1].split("\n\n", 1)[0]
    assert "warm" in run_time and "cold" in run_time, "run time warm and cold"


@pytest.mark.parametrize("number", NUMBERS, ids=lambda n: f"{n:02d}")
def test_roadmap_is_drawn_with_this_notebook_marked(number):
    nb = load(number)
    code = [c for c in nb["cells"][:3] if c["cell_type"] == "code"]
    cell = next((c for c in code if f"roadmap({number})" in source(c)), None)
    assert cell is not None, f"roadmap({number}) in one of the first cells"
    assert any("image/png" in o.get("data", {}) for o in cell.get("outputs", [])), "the roadmap is drawn"


@pytest.mark.parametrize("number", NUMBERS, ids=lambda n: f"{n:02d}")
def test_expectations_are_stated_before_results(number):
    said = sum(m.count("What you should see") for m in markdown(load(number)))
    assert said >= 2, f"'What you should see' stated {said} times"


@pytest.mark.parametrize("number", NUMBERS, ids=lambda n: f"{n:02d}")
def test_exercises_with_collapsed_solutions(number):
    cells = load(number)["cells"]
    starts = [i for i, c in enumerate(cells) if c["cell_type"] == "markdown" and source(c).startswith("## Exercises")]
    assert len(starts) == 1, "one '## Exercises' section"
    exercises = [i for i, c in enumerate(cells) if c["cell_type"] == "markdown"
                 and re.match(r"### Exercise \d", source(c)) and i > starts[0]]
    assert len(exercises) >= 3, f"{len(exercises)} exercises"
    for i in exercises:
        text = source(cells[i])
        assert "Expected" in text or "expected" in text, f"exercise at cell {i} states the expected result"
        sol = cells[i + 1]
        assert sol["cell_type"] == "code", f"exercise at cell {i}: its solution cell follows it"
        assert "solution" in sol["metadata"].get("tags", []), f"cell {i + 1}: tagged 'solution'"
        assert sol["metadata"].get("jupyter", {}).get("source_hidden") is True, f"cell {i + 1}: collapsed"
        assert sol.get("outputs"), f"cell {i + 1}: the solution was executed"


@pytest.mark.parametrize("number", NUMBERS, ids=lambda n: f"{n:02d}")
def test_summary_names_the_next_notebook(number):
    summary = [m for m in markdown(load(number)) if m.startswith("## Summary")]
    assert len(summary) == 1, "one '## Summary' cell"
    nxt = lesson(number).next
    if nxt is not None:
        assert nxt.file in summary[0], f"the summary links {nxt.file}"


@pytest.mark.parametrize("number", NUMBERS, ids=lambda n: f"{n:02d}")
def test_some_output_is_checked_by_nbval(number):
    checked = [c for c in load(number)["cells"] if c["cell_type"] == "code"
               and source(c).lstrip().startswith("# NBVAL_CHECK_OUTPUT")]
    assert checked, "at least one cell whose output nbval compares"


@pytest.mark.parametrize("number", NUMBERS, ids=lambda n: f"{n:02d}")
def test_outputs_print_no_machine_paths(number):
    nb = load(number)
    for i, c in enumerate(nb["cells"]):
        for o in c.get("outputs", []):
            text = "".join(o.get("text", "")) + "".join(o.get("data", {}).get("text/plain", ""))
            for bad in (str(ROOT), "/home/", "/work/", "/tmp/"):
                assert bad not in text, f"cell {i} prints a machine path ({bad}...)"


@pytest.mark.parametrize("number", NUMBERS, ids=lambda n: f"{n:02d}")
def test_widget_outputs_have_their_state_saved(number):
    nb = load(number)
    views = [o for c in nb["cells"] for o in c.get("outputs", [])
             if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    if views:
        state = nb["metadata"].get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {})
        ids = {o["data"]["application/vnd.jupyter.widget-view+json"]["model_id"] for o in views}
        assert ids <= set(state.get("state", {})), "every displayed widget's model is in the saved state"
