"""Generate the Python code of the contract from proto/ into the shared package.

Run ``python -m socialcrm_devstack.proto_codegen`` after editing a .proto file;
tests/unit/test_contract.py fails when the committed code is stale.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from grpc_tools import protoc

from socialcrm_devstack.infra import REPO

PROTO_ROOT = REPO / "proto"
PACKAGE_ROOT = REPO / "libs" / "common"
GENERATED_DIR = PACKAGE_ROOT / "socialcrm" / "v1"


def proto_files() -> list[Path]:
    return sorted((PROTO_ROOT / "socialcrm" / "v1").glob("*.proto"))


def generate(out_root: Path) -> Path:
    """Write *_pb2.py and *_pb2.pyi for every .proto under out_root; return the v1 dir."""
    well_known = Path(protoc.__file__).parent / "_proto"
    args = [
        "protoc",
        f"-I{PROTO_ROOT}",
        f"-I{well_known}",
        f"--plugin=protoc-gen-mypy={Path(sys.executable).parent / 'protoc-gen-mypy'}",
        f"--python_out={out_root}",
        f"--mypy_out={out_root}",
        *[str(p.relative_to(PROTO_ROOT)) for p in proto_files()],
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed: see the messages above")
    v1 = out_root / "socialcrm" / "v1"
    (v1 / "__init__.py").write_text('"""Generated from proto/socialcrm/v1: do not edit."""\n')
    return v1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        fresh = generate(Path(tmp))
        for old in GENERATED_DIR.glob("*_pb2.py*"):
            old.unlink()
        for path in fresh.iterdir():
            shutil.copy2(path, GENERATED_DIR / path.name)
    print(
        f"generated {len(proto_files())} proto files into {GENERATED_DIR.relative_to(REPO)}",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
