"""The README's settings reference is generated from the settings table (and
its gunicorn/uvicorn part from `hybrid.peers`), and stays so: a change to a
setting or a peer's default without `python -m hybrid.reference --write
README.md` fails here."""

from __future__ import annotations

from pathlib import Path

import pytest

from hybrid import cli, config, peer_defaults, peers, reference, sources

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
    seen = [sources.load({}, env={}).config.workers]
    for count in range(1, len(layers) + 1):
        env = {k: v for _, layer_env, _ in layers[:count] for k, v in layer_env.items()}
        cli = {k: v for _, _, layer_cli in layers[:count] for k, v in layer_cli.items()}
        seen.append(sources.load(cli, env=env).config.workers)
    assert seen == [1, 2, 3, 4, 5]  # each layer overrides the ones before it
    text = reference.markdown()
    stated = [text.index(part) for part in config.PRECEDENCE]
    assert stated == sorted(stated) and len(config.PRECEDENCE) == len(seen)


# --- where the defaults differ from gunicorn's and uvicorn's ---------------------------

def from_command_line(argv: tuple[str, ...]) -> config.Config:
    """The Config `hybrid run APP ARGV` serves with (no process)."""
    args = vars(cli.build_parser().parse_args(["run", "app:app", *argv]))
    args.pop("command")
    translated, _, _ = peers.translate(args.pop("peer_flags", {}))
    return sources.load({**translated, **args}, {}).config


@pytest.mark.parametrize(("peer", "name"), [(peer, name) for peer, defaults in
                                            peer_defaults.PEER_DEFAULTS.items() for name in defaults])
def test_each_peer_default_is_a_value_of_hybrids_setting(peer, name):
    value = peer_defaults.PEER_DEFAULTS[peer][name]
    given = {} if value is None else {name: value}  # (None: not set, as hybrid's None)
    assert getattr(sources.load(given, {}).config, name) == value


@pytest.mark.parametrize("row", peer_defaults.differences(), ids=lambda row: f"{row.what}-{row.peers}")
def test_each_difference_is_undone_by_the_flags_its_row_names(row):
    cfg = from_command_line(row.restore)
    name = row.what.strip("`")
    if name in config.SETTINGS:
        assert getattr(cfg, name) == peer_defaults.PEER_DEFAULTS[row.peers][name]


def test_a_default_that_differs_from_a_peers_is_listed_and_one_that_agrees_is_not():
    listed = {(row.what, row.peers) for row in peer_defaults.differences()}
    assert ("`keep_alive`", "gunicorn") in listed  # gunicorn's 2 s, hybrid's 5 s
    assert not any(what == "`keep_alive`" and whose == "uvicorn" for what, whose in listed)


def test_the_readme_says_where_the_defaults_differ():
    text = reference.readme_copy(README.read_text())
    part = text.split("#### Where the defaults differ")[1]
    assert len([line for line in part.splitlines() if line.startswith("| ")]) == \
        len(peer_defaults.differences()) + 1  # (and the heading row)
