"""Static checks of the Python code, no JVM: pyflakes finds unused imports and variables,
undefined names and redefinitions in every package, the tests and the benchmarks."""

import io

import pyflakes.api
import pyflakes.reporter

from adagg.paths import REPO

CHECKED = ("adagg", "archive", "collector", "pyflink_jobs", "reconcile", "serving", "udfs", "tests", "benchmarks")


def test_python_code_has_no_pyflakes_warnings():
    out = io.StringIO()
    warnings = pyflakes.api.checkRecursive([str(REPO / d) for d in CHECKED], pyflakes.reporter.Reporter(out, out))
    assert warnings == 0, out.getvalue()
