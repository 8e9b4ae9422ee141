"""`ccd export`, `ccd deploy` and `ccd rollback`: thin skins over cc_capture.deploy.release."""

from __future__ import annotations

from contextlib import nullcontext
from typing import Optional

import typer
from rich.table import Table

from cc_capture.cli.output import console, fail, human_bytes, open_home, print_json
from cc_capture.config import Quantization

JSON_OPT = typer.Option(False, "--json", help="Print JSON (stable snake_case keys) instead of a table.")
VERSION_ARG = typer.Argument(None, metavar="[VERSION]", help="A model version (default: the champion).")


def export_cmd(version: Optional[int] = VERSION_ARG,
               quantize: Optional[list[Quantization]] = typer.Option(
                   None, "--quantize", help="GGUF types to make besides f16 (default: \\[deploy] quantization)."),
               as_json: bool = JSON_OPT) -> None:
    """Merged weights → GGUF f16 (llama.cpp's converter) → quantized → verified against the HF model."""
    from cc_capture.deploy.release import export_version
    from cc_capture.deploy.server import DeployError
    from cc_capture.export.exporter import ExportFailed
    from cc_capture.export.toolchain import ToolchainMissing

    paths, settings, db = open_home()
    with console.status("exporting", spinner="dots") if not as_json else nullcontext() as spinner:
        def on_step(step: str) -> None:
            if spinner is not None:
                spinner.update(f"exporting: {step.replace('_', ' ')}")

        try:
            model, result = export_version(db, paths, settings, version, quantize, on_step)
        except (ToolchainMissing, ExportFailed, DeployError) as e:
            fail(str(e))
    gguf = model.artifacts["gguf"]
    evaluations = {q: gguf[q]["evaluation"] for q in result.files if gguf[q].get("evaluation")}
    if as_json:
        return print_json({"version": model.version, "passed": result.passed, "timings_s": result.timings_s,
                           "files": result.as_dict()["files"], "evaluations": evaluations})
    table = Table(title=f"v{model.version} exported")
    for col in ("type", "size", "next-token agreement", "identical outputs", "behavioural similarity (HF)",
                "sha256", "file"):
        table.add_column(col)
    for q, f in result.files.items():
        v, e = f.verification, evaluations.get(q)
        scored = (f"{e['metrics']['behavioural_similarity']} ({e['hf_metrics']['behavioural_similarity']}) on "
                  f"{e['items']} items") if e else "-"
        table.add_row(q, human_bytes(f.bytes), f"{v.next_token_agreement:.1%} of {v.tokens}",
                      f"{v.exact_sequences}/{v.prompts}", scored, f.sha256[:12], f.path)
    console.print(table)


def deploy_cmd(version: Optional[int] = VERSION_ARG, as_json: bool = JSON_OPT) -> None:
    """Create NAME:vN in Ollama from the exported GGUF, check its tools capability, point NAME:latest at it."""
    from cc_capture.deploy.release import deploy_version
    from cc_capture.deploy.server import DeployError

    paths, settings, db = open_home()
    try:
        with console.status("deploying", spinner="dots") if not as_json else nullcontext() as spinner:
            result = deploy_version(db, settings, version, on_status=(lambda s: spinner.update(f"deploying: {s}"))
                                    if spinner is not None else None)
    except DeployError as e:
        fail(str(e))
    if as_json:
        return print_json(result.as_json())
    d = result.deployment
    console.print(f"[green]deployed[/] v{d.model_version} as {d.tag}; {d.alias} points at it ({d.host}, Ollama "
                  f"{result.ollama_version})" + (f"; removed {', '.join(result.pruned)}" if result.pruned else ""))


def rollback_cmd(version: Optional[int] = typer.Argument(None, metavar="[VERSION]",
                                                         help="The version to go back to (default: the previous champion)."),
                 reason: str = typer.Option("", "--reason", help="Why (recorded with the retired model)."),
                 as_json: bool = JSON_OPT) -> None:
    """Point NAME:latest back at the previous champion (or VERSION); the model rolled back is retired."""
    from cc_capture.deploy.release import rollback_version
    from cc_capture.deploy.server import DeployError

    paths, settings, db = open_home()
    try:
        result = rollback_version(db, settings, version, reason)
    except DeployError as e:
        fail(str(e))
    if as_json:
        return print_json(result.as_json())
    d = result.deployment
    console.print(f"[green]rolled back[/]: {d.alias} points at {d.tag} again (was v{d.previous_version}, now retired)")


def register(app: typer.Typer) -> None:
    app.command("export")(export_cmd)
    app.command("deploy")(deploy_cmd)
    app.command("rollback")(rollback_cmd)
