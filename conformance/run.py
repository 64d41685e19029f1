"""Property-based conformance run of a live upstack against Adobe's OpenAPI spec of the export loop.

usage: python conformance/run.py BASE_URL [MAX_EXAMPLES_PER_OPERATION] [more schemathesis options...]
e.g.   python conformance/run.py http://127.0.0.1:8080 25 --report junit

First it creates real objects in the run's tenant (a dataset with a batch and its file, a finished export
job, a merge policy, and a second of each for the DELETEs: fixtures.py) and gives their ids to the spec's
parameters as examples, so that every operation is reached with ids that exist, not only with made-up ones.
schemathesis then sends every operation of `aep-export-loop.augmented.openapi.json` (next to this file) its
examples and generated requests, with the four AEP headers, and checks that no answer is a 5xx, that every answer matches the
status codes and bodies the spec declares, and that its Content-Type is the declared one. Install it with
`pip install 'upstack[conformance]'`; `make conformance` does that and starts a throwaway server first.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # fixtures.py beside this file, however it is loaded
from fixtures import make_fixtures, with_examples  # noqa: E402

SPEC = Path(__file__).resolve().parent / "aep-export-loop.augmented.openapi.json"
CHECKS = "not_a_server_error,response_schema_conformance,content_type_conformance"
HEADERS = {"Authorization": "Bearer conformance-token", "x-api-key": "conformance-key",
           "x-gw-ims-org-id": "CONFORMANCE@AdobeOrg", "x-sandbox-name": "prod"}


def schemathesis() -> str | None:
    """The schemathesis command of this interpreter's environment, else the one on PATH."""
    beside = Path(sys.executable).parent / "schemathesis"
    return str(beside) if beside.is_file() else shutil.which("schemathesis")


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.strip(), file=sys.stderr)
        return 0 if argv else 2
    base, rest = argv[0], argv[1:]
    examples = rest.pop(0) if rest and rest[0].isdigit() else "20"
    command = schemathesis()
    if command is None:
        print("conformance: schemathesis is not installed; pip install 'upstack[conformance]' (or run "
              "`make conformance`)", file=sys.stderr)
        return 2
    fixtures = make_fixtures(base, HEADERS)
    print(f"conformance: fixtures {json.dumps(fixtures)}", file=sys.stderr)
    headers = [arg for name, value in HEADERS.items() for arg in ("-H", f"{name}: {value}")]
    with tempfile.TemporaryDirectory(prefix="upstack-conformance-") as tmp:
        spec = Path(tmp) / SPEC.name
        spec.write_text(json.dumps(with_examples(json.loads(SPEC.read_text()), fixtures)))
        return subprocess.call([command, "run", str(spec), "--url", base, "--max-examples", examples, "--seed", "1",
                                "--checks", CHECKS, *headers, "--max-time", "900", "--no-color", *rest])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
