"""examples/range_test.ipynb runs top to bottom in a real Jupyter kernel, and its results show themselves."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")
pytest.importorskip("torch")

# Every warning is shown in the kernel (as a stream the tests read), except the curve
# warnings, which are the product speaking. A progress bar that warns "IProgress not
# found" fails here. (Not "error": tqdm.auto would swallow that error and go quiet.)
_SHOW_WARNINGS = (
    "import warnings, lrscout\n"
    "warnings.simplefilter('always')\n"
    "warnings.filterwarnings('ignore', category=lrscout.CurveWarning)"
)


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    notebook = nbformat.read(ROOT / "examples" / "range_test.ipynb", as_version=4)
    assert all(not cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code"), (
        "commit the notebook without outputs"
    )
    notebook.cells.insert(0, nbformat.v4.new_code_cell(_SHOW_WARNINGS))
    folder = tmp_path_factory.mktemp("notebook")
    client = nbclient.NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(folder)}}
    )
    client.execute()
    return notebook.cells[1:], folder


def _outputs(cell, kind):
    return [output for output in cell.get("outputs", []) if output.output_type == kind]


def test_every_cell_runs_and_nothing_warns(executed):
    cells, folder = executed
    for cell in cells:
        if cell.cell_type != "code":
            continue
        assert not _outputs(cell, "error")
        for stream in _outputs(cell, "stream"):
            assert "Warning" not in stream.text and "IProgress" not in stream.text, stream.text
            # tqdm's text bar in a kernel is a red stderr box: a widget, or no bar at all.
            assert "LR range test" not in stream.text, stream.text
    assert list(folder.iterdir()) == []  # nothing written beside it


def test_results_display_as_a_plot_and_a_table(executed):
    cells, _ = executed
    shown = [
        output.data["text/html"]
        for cell in cells
        for output in _outputs(cell, "execute_result")
        if "text/html" in output.data
    ]
    assert len(shown) == 3  # the NumPy result, the PyTorch result, the comparison
    for html in shown:
        image = re.search(r'<img src="data:image/png;base64,([^"]+)"', html)
        assert image is not None and base64.b64decode(image.group(1)).startswith(b"\x89PNG")
    for html in shown[:2]:
        assert re.search(r"<td[^>]*>suggested lr</td><td[^>]*>[0-9.e+-]+ \(auto\)</td>", html)
        assert re.search(r"<td[^>]*>lr_range\(\)</td>", html) and re.search(r"<td[^>]*>stopped</td>", html)
    assert re.search(r"<th[^>]*>variant</th>", shown[2])


def test_the_summary_cell_matches_the_displayed_suggestion(executed):
    cells, _ = executed
    code = [cell for cell in cells if cell.cell_type == "code"]
    numpy_html = _outputs(code[1], "execute_result")[0].data["text/html"]
    summary = _outputs(code[-1], "execute_result")[0].data["text/plain"]
    lr = re.search(r"<td[^>]*>suggested lr</td><td[^>]*>(\S+) \(auto\)</td>", numpy_html).group(1)
    shown = re.search(r"'suggestion': \{'lr': ([0-9.e+-]+)", summary).group(1)
    assert f"{float(shown):.3g}" == lr
