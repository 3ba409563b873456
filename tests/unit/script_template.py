"""Render a role's Python job-script template with plain Jinja2 over fake values and import it
(the backup and maintenance scripts' unit tests)."""

import importlib.util
import json
from pathlib import Path

import jinja2


def render_script(template: Path, values: dict, path: Path):
    """The template rendered to `path` and imported as a module named after the file."""
    env = jinja2.Environment(undefined=jinja2.StrictUndefined)
    env.filters["to_json"] = json.dumps
    path.write_text(env.from_string(template.read_text()).render(**values))
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
