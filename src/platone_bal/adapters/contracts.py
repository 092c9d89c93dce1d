"""The Solidity contracts' compiled artifacts, and the pinned compile that produces them.

Sources live in `contracts/`; `make contracts` compiles them with the npm `solc`
(solc-js) pinned in package.json, in standard-JSON mode with `evmVersion` shanghai (the
newest target ganache and our py-evm chain both run), and writes ABI and bytecode to
`artifacts/contracts.json` inside the package. The node never needs a compiler; a test
recompiles and compares, so the committed artifacts cannot drift from the sources.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

CONTRACT_NAMES = ("CertificationRegistry", "DeviceRegistry", "SubscriptionRegistry")
SOURCES = (*CONTRACT_NAMES, "Administered")  # Administered is an abstract base only
EVM_VERSION = "shanghai"
ARTIFACTS = "contracts.json"


@dataclass(frozen=True, slots=True)
class Artifact:
    name: str
    abi: list[dict[str, Any]]
    bytecode: bytes


def standard_json_input(sources_dir: Path) -> dict[str, Any]:
    """solc standard-JSON input for every contract source, with pinned settings."""
    return {
        "language": "Solidity",
        "sources": {
            f"contracts/{name}.sol": {"content": (sources_dir / f"{name}.sol").read_text()}
            for name in SOURCES
        },
        "settings": {
            "evmVersion": EVM_VERSION,
            "optimizer": {"enabled": True, "runs": 200},
            "outputSelection": {"*": {"*": ["abi", "evm.bytecode.object"]}},
        },
    }


def compile_contracts(solcjs: Path, sources_dir: Path) -> dict[str, Any]:
    """Compile with solc-js and return the artifacts document (raises on any error)."""
    completed = subprocess.run(
        [str(solcjs), "--standard-json"],
        input=json.dumps(standard_json_input(sources_dir)),
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    # solc-js may print a line of its own before the JSON document
    output = json.loads(completed.stdout[completed.stdout.index("{") :])
    errors = [e for e in output.get("errors", []) if e.get("severity") == "error"]
    if errors:
        raise RuntimeError("solc failed:\n" + "\n".join(e["formattedMessage"] for e in errors))
    version = subprocess.run(
        [str(solcjs), "--version"], capture_output=True, text=True, check=True, timeout=60
    ).stdout.strip()
    contracts = {
        name: {
            "abi": output["contracts"][f"contracts/{name}.sol"][name]["abi"],
            "bytecode": output["contracts"][f"contracts/{name}.sol"][name]["evm"]["bytecode"][
                "object"
            ],
        }
        for name in CONTRACT_NAMES
    }
    return {"compiler": version, "evmVersion": EVM_VERSION, "contracts": contracts}


@cache
def artifacts() -> dict[str, Artifact]:
    """The committed artifacts, by contract name."""
    text = resources.files("platone_bal.adapters").joinpath("artifacts", ARTIFACTS).read_text()
    document = json.loads(text)
    return {
        name: Artifact(name, entry["abi"], bytes.fromhex(entry["bytecode"]))
        for name, entry in document["contracts"].items()
    }


def main() -> None:
    """`python -m platone_bal.adapters.contracts ROOT`: recompile and rewrite the artifacts."""
    import sys

    root = Path(sys.argv[1] if len(sys.argv) > 1 else ".")
    document = compile_contracts(root / "node_modules/.bin/solcjs", root / "contracts")
    target = Path(__file__).parent / "artifacts" / ARTIFACTS
    target.parent.mkdir(exist_ok=True)
    target.write_text(json.dumps(document, indent=1, sort_keys=True) + "\n")
    print(f"wrote {target} ({document['compiler']})")


if __name__ == "__main__":
    main()
