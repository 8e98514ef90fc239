"""The README's settings reference is generated from the settings table, and
stays so: a change to a setting without `python -m hybrid.reference --write
README.md` fails here."""

from __future__ import annotations

from pathlib import Path

from hybrid import config, reference

README = Path(__file__).resolve().parent.parent / "README.md"


def test_the_readme_settings_reference_is_what_the_table_generates():
    assert reference.readme_copy(README.read_text()) == reference.markdown(), (
        "README.md is stale: run `python -m hybrid.reference --write README.md`")


def test_the_reference_has_a_row_for_every_setting():
    settings_part = reference.markdown().split("#### Coming from")[0]
    rows = [line for line in settings_part.splitlines() if line.startswith("| `")]
    assert [row.split("`")[1] for row in rows] == list(config.SETTINGS)


def test_the_precedence_the_reference_states_is_the_one_the_loader_applies(tmp_path):
    file = tmp_path / "hybrid.toml"
    file.write_text("workers = 3\n")
    layers = [("platform", {"WEB_CONCURRENCY": "2"}, {}), ("file", {}, {"config": str(file)}),
              ("env", {"HYBRID_WORKERS": "4"}, {}), ("command line", {}, {"workers": "5"})]
    seen = [config.load({}, env={}).config.workers]
    for count in range(1, len(layers) + 1):
        env = {k: v for _, layer_env, _ in layers[:count] for k, v in layer_env.items()}
        cli = {k: v for _, _, layer_cli in layers[:count] for k, v in layer_cli.items()}
        seen.append(config.load(cli, env=env).config.workers)
    assert seen == [1, 2, 3, 4, 5]  # each layer overrides the ones before it
    text = reference.markdown()
    stated = [text.index(part) for part in config.PRECEDENCE]
    assert stated == sorted(stated) and len(config.PRECEDENCE) == len(seen)
