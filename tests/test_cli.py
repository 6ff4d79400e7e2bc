"""The command line, run in-process through ``main`` and once for real as a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import BUGGY_ROW

from mllint import __version__
from mllint.cli import main
from mllint.registry import all_rules


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_text_output_and_exit_code(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "check", ".")
    assert code == 1
    assert f"buggy.py:{BUGGY_ROW}:" in out and "ML001" in out
    assert "clean.py" not in out
    assert "Found 1 error." in out
    assert "\x1b[" not in out  # no colour outside a terminal


def test_subcommand_is_optional(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "buggy.py")
    assert code == 1 and "ML001" in out


def test_clean_file_exits_zero(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "clean.py")
    assert code == 0 and "All checks passed!" in out


def test_exit_zero_and_quiet(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "--exit-zero", "--quiet", "buggy.py")
    assert code == 0
    assert "ML001" in out and "Found" not in out


@pytest.mark.parametrize(
    ("options", "reported"),
    [
        (["--select", "ML001"], True),
        (["--select", "ML0"], True),
        (["--select", "ML002"], False),
        (["--ignore", "ML001"], False),
        (["--ignore", "ML0"], False),
        (["--select", "ML0", "--ignore", "ML001"], False),
        (["--select", "ML001", "--ignore", "ML0"], True),  # the more specific selector wins
        (["--select", "ML002", "--extend-select", "ML001"], True),
    ],
)
def test_selection(project: Path, capsys: pytest.CaptureFixture[str], options: list[str], reported: bool) -> None:
    code, out, _ = run_cli(capsys, *options, "buggy.py")
    assert ("ML001" in out) is reported
    assert code == (1 if reported else 0)


def test_unknown_selector_is_a_usage_error(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "--select", "XX9", "buggy.py")
    assert code == 2 and "XX9" in err and "Traceback" not in err


def test_noqa_suppresses(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = (project / "buggy.py").read_text().splitlines()
    for comment in ("  # noqa: ML001", "  # noqa", "  # noqa: ML002, ML001"):
        patched = list(lines)
        patched[BUGGY_ROW - 1] += comment
        (project / "buggy.py").write_text("\n".join(patched) + "\n")
        assert run_cli(capsys, "buggy.py")[0] == 0, comment
    patched = list(lines)
    patched[BUGGY_ROW - 1] += "  # noqa: ML002"
    (project / "buggy.py").write_text("\n".join(patched) + "\n")
    assert run_cli(capsys, "buggy.py")[0] == 1


def test_pyproject_settings(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "pyproject.toml").write_text('[tool.mllint]\nper-file-ignores = { "buggy.py" = ["ML001"] }\n')
    assert run_cli(capsys, ".")[0] == 0
    (project / "pyproject.toml").write_text('[tool.mllint]\nextend-exclude = ["buggy.py"]\n')
    assert run_cli(capsys, ".")[0] == 0
    (project / "pyproject.toml").write_text('[tool.mllint]\nignore = ["ML001"]\n')
    assert run_cli(capsys, ".")[0] == 0


def test_settings_found_from_a_subfolder(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "pyproject.toml").write_text('[tool.mllint]\nignore = ["ML001"]\n')
    (project / "src").mkdir()
    (project / "buggy.py").rename(project / "src" / "buggy.py")
    assert run_cli(capsys, "src")[0] == 0


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[tool.mllint]\nselct = ['ML001']\n", "selct"),
        ("[tool.mllint]\nselect = 'ML001'\n", "select"),
        ("[tool.mllint]\nrespect-gitignore = 'yes'\n", "respect-gitignore"),
        ("[tool.mllint\n", "not valid TOML"),
    ],
)
def test_bad_configuration(project: Path, capsys: pytest.CaptureFixture[str], content: str, message: str) -> None:
    (project / "pyproject.toml").write_text(content)
    code, _, err = run_cli(capsys, ".")
    assert code == 2
    assert message in err and "pyproject.toml" in err and "Traceback" not in err


def test_explicit_config_file(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "other.toml").write_text('[tool.mllint]\nignore = ["ML001"]\n')
    assert run_cli(capsys, "--config", "other.toml", ".")[0] == 0
    code, _, err = run_cli(capsys, "--config", "missing.toml", ".")
    assert code == 2 and "missing.toml" in err


def test_json_output_has_ruff_fields(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "--output-format", "json", ".")
    assert code == 1
    [report] = json.loads(out)
    for key in ("cell", "code", "message", "filename", "location", "end_location", "fix", "url", "noqa_row"):
        assert key in report
    assert report["code"] == "ML001" and report["name"] == "double-softmax"
    assert report["location"]["row"] == BUGGY_ROW and report["noqa_row"] == BUGGY_ROW
    assert Path(report["filename"]).name == "buggy.py" and Path(report["filename"]).is_absolute()
    assert report["cell"] is None and report["fix"] is None


def test_github_output(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "--output-format", "github", ".")
    assert code == 1
    assert out.startswith(f"::error file=buggy.py,line={BUGGY_ROW},col=")
    assert ",endLine=" in out and ",endColumn=" in out and ",title=ML001::" in out


def test_sarif_output_is_valid(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads((Path(__file__).parent / "data" / "sarif-schema-2.1.0.json").read_text())
    code, out, _ = run_cli(capsys, "--output-format", "sarif", ".")
    assert code == 1
    document = json.loads(out)
    jsonschema.validate(document, schema)
    [run] = document["runs"]
    assert {rule["id"] for rule in run["tool"]["driver"]["rules"]} >= {"ML001"}
    assert all(rule["help"]["text"] for rule in run["tool"]["driver"]["rules"])
    [result] = run["results"]
    assert result["ruleId"] == "ML001"
    assert result["locations"][0]["physicalLocation"]["region"]["startLine"] == BUGGY_ROW


def test_statistics(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "--statistics", ".")
    assert code == 1 and "ML001" in out and "double-softmax" in out


def test_rule_documentation(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "rule", "ML001")
    assert code == 0
    for heading in ("## What it does", "## Why is this bad?", "## Example", "## Use instead"):
        assert heading in out
    assert run_cli(capsys, "rule", "double-softmax")[0] == 0
    code, _, err = run_cli(capsys, "rule", "ML999")
    assert code == 2 and "ML999" in err


def test_every_rule_is_documented_in_ruff_shape() -> None:
    for rule in all_rules():
        doc = rule.documentation()
        for heading in ("## What it does", "## Why is this bad?", "## Example", "## Use instead"):
            assert heading in doc, f"{rule.code} lacks {heading}"
        assert rule.summary and rule.name and rule.severity in ("error", "warning", "info")


def test_rules_listing(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "rules", "--output-format", "json")
    listed = json.loads(out)
    assert code == 0 and [entry["code"] for entry in listed] == [rule.code for rule in all_rules()]
    code, out, _ = run_cli(capsys, "rules")
    assert "ML001" in out and "double-softmax" in out


def test_unreadable_and_invalid_files_are_reported(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "broken.py").write_text("def f(:\n")
    (project / "latin.py").write_bytes(b"x = '\xe9'\n")
    code, out, _ = run_cli(capsys, ".", "missing.py")
    assert code == 1
    assert "broken.py:1:" in out and "syntax error" in out
    assert "latin.py" in out and "cannot decode" in out
    assert "missing.py" in out and "no such file" in out
    assert "buggy.py" in out  # the rest of the run goes on


def test_version_and_real_process(project: Path) -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "mllint", "--version"], capture_output=True, text=True, check=False
    )
    assert completed.returncode == 0 and completed.stdout.strip() == f"mllint {__version__}"
    completed = subprocess.run(
        [sys.executable, "-m", "mllint", "check", "buggy.py"], capture_output=True, text=True, check=False
    )
    assert completed.returncode == 1 and "ML001" in completed.stdout
    completed = subprocess.run(
        [sys.executable, "-m", "mllint", "check", "--output-format", "xml"], capture_output=True, text=True, check=False
    )
    assert completed.returncode == 2 and "output-format" in completed.stderr


def test_a_reader_that_stops_early_gets_no_error() -> None:
    # ``mllint fixtures/ | head -1``: the pipe closes while findings are still being written
    fixtures = Path(__file__).parent.parent / "fixtures"
    linter = subprocess.Popen(
        [sys.executable, "-m", "mllint", "check", "--no-cache", str(fixtures)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert linter.stdout is not None and linter.stderr is not None
    first = linter.stdout.readline()
    linter.stdout.close()
    errors = linter.stderr.read().decode()
    linter.wait(timeout=120)
    assert b"ML" in first
    assert errors == ""


def test_worker_processes_report_what_one_process_does(capsys: pytest.CaptureFixture[str]) -> None:
    fixtures = str(Path(__file__).resolve().parent.parent / "fixtures")
    one = run_cli(capsys, "check", "--no-cache", "--output-format", "json", "--jobs", "1", fixtures)
    two = run_cli(capsys, "check", "--no-cache", "--output-format", "json", "--jobs", "2", fixtures)
    assert one[0] == two[0] == 1
    assert json.loads(one[1]) == json.loads(two[1]) != []
