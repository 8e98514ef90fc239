"""The generated docs pages stay what the tables generate: docs/settings.md from
the settings table, grouped by section, and docs/migrating.md from gunicorn's and
uvicorn's flags (`hybrid.peers`, `hybrid.gunicorn_conf`, `hybrid.peer_defaults`).
A change to a setting, a flag or a peer's default without `python -m
hybrid.reference --write docs` fails here."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from hybrid import cli, config, gunicorn_conf, peer_defaults, peers, reference, sources, workers

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def sections_of(page: str) -> dict[str, list[str]]:
    """A page's `##` headings, each with the lines under it."""
    parts: dict[str, list[str]] = {}
    heading = ""
    for line in page.splitlines():
        if line.startswith("## "):
            heading = line[3:]
        parts.setdefault(heading, []).append(line)
    return parts


def first_cells(lines: list[str]) -> list[str]:
    """The code in each table row's first cell (`keep_alive`, `--daemon`...)."""
    return [match[1] for line in lines if (match := re.match(r"\| `([^`]+)` \|", line))]


@pytest.mark.parametrize("name", list(reference.PAGES))
def test_each_generated_page_is_what_the_tables_generate(name):
    assert (DOCS / name).read_text() == reference.PAGES[name](), (
        f"docs/{name} is stale: run `python -m hybrid.reference --write docs`")


def test_writing_the_docs_folder_writes_every_generated_page(tmp_path):
    assert reference.main(["--write", str(tmp_path)]) == 0
    for name, page in reference.PAGES.items():
        assert (tmp_path / name).read_text() == page()


# --- the settings page ----------------------------------------------------------------

def test_every_setting_has_a_section_of_the_fixed_list():
    assert all(setting.section in config.SECTIONS for setting in config.SETTINGS.values())


def test_the_table_keeps_each_sections_settings_together_in_display_order():
    in_table = [setting.section for setting in config.SETTINGS.values()]
    runs = [section for index, section in enumerate(in_table)
            if index == 0 or in_table[index - 1] != section]
    assert runs == list(config.SECTIONS)


def test_every_setting_has_a_row_under_its_sections_heading():
    parts = sections_of((DOCS / "settings.md").read_text())
    assert [heading for heading in parts if heading in config.SECTIONS] == list(config.SECTIONS)
    for section in config.SECTIONS:
        assert first_cells(parts[section]) == [
            name for name, setting in config.SETTINGS.items() if setting.section == section]


def test_a_settings_row_gives_its_flag_its_environment_variable_and_its_default():
    rows = [line for line in (DOCS / "settings.md").read_text().splitlines()
            if line.startswith("| `keep_alive` |")]
    assert len(rows) == 1
    assert all(part in rows[0] for part in ("`--keep-alive`", "`HYBRID_KEEP_ALIVE`", "`5.0`"))


def test_the_section_links_are_the_anchors_mkdocs_makes():
    toc = pytest.importorskip("markdown.extensions.toc")
    for heading in (*config.SECTIONS, reference.FILE_TITLE, reference.DEFAULTS_TITLE):
        assert reference.anchor(heading) == toc.slugify(heading, "-")


@pytest.mark.parametrize("name", list(reference.PAGES))
def test_a_glob_or_a_power_in_the_help_is_not_read_as_emphasis(name):
    markdown = pytest.importorskip("markdown")
    html = markdown.markdown(reference.PAGES[name](), extensions=["tables"])
    bold = {"name", "flags", "environment", "default", "what it does",
            reference.SAME, reference.TRANSLATED, reference.ACCEPTED, reference.REFUSED}
    assert "<em>" not in html and set(re.findall("<strong>(.*?)</strong>", html)) <= bold


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
    text = reference.settings_page()
    stated = [text.index(part) for part in config.PRECEDENCE]
    assert stated == sorted(stated) and len(config.PRECEDENCE) == len(seen)


# --- the migration page ---------------------------------------------------------------

def migrating_part(heading: str) -> list[str]:
    return sections_of((DOCS / "migrating.md").read_text())[heading]


def test_every_refused_flag_and_only_those_is_listed_under_refused_flags():
    refused = {flag for peer in peers.FLAGS if peer.kind == peers.REFUSED for flag in peer.flags}
    listed = first_cells(migrating_part(reference.REFUSED_TITLE))
    assert sorted(listed) == sorted(refused)


def test_every_flag_of_theirs_has_a_row_with_its_status():
    theirs = set(peers.by_flag()) | {flag for flags in peers.SAME.values() for flag in flags}
    rows = [line for line in migrating_part(reference.FLAGS_TITLE) if line.startswith("| `")]
    assert sorted(first_cells(rows)) == sorted(theirs)
    statuses = {line.split(" | ")[2].strip("*") for line in rows}
    assert statuses == {reference.SAME, reference.TRANSLATED, reference.ACCEPTED, reference.REFUSED}


def test_a_flag_whose_default_differs_says_so_in_its_row():
    row = next(line for line in migrating_part(reference.FLAGS_TITLE)
               if line.startswith("| `--keep-alive` |"))
    assert "gunicorn's default differs" in row


def test_every_gunicorn_conf_py_name_hybrid_reads_has_a_row():
    names = {*gunicorn_conf.GUNICORN_FILE_NAMES, *gunicorn_conf.GUNICORN_FILE_ACCEPTED,
             *gunicorn_conf.GUNICORN_FILE_REFUSED, *gunicorn_conf.HOOK_NAMES}
    assert names <= set(first_cells(migrating_part(reference.FILE_TITLE)))


def test_the_commands_the_migration_page_prints_are_accepted(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "gunicorn.conf.py").write_text("workers = 2\n")
    commands = re.findall(r"`hybrid (run [^`]+)`", reference.INTRO)
    assert len(commands) >= 4
    for command in commands:
        cfg = config_of(shlex.split(command))  # (a refused flag exits, a bad value raises)
        assert workers.load_class(workers.resolve_name(cfg.worker_class))


# --- where the defaults differ from gunicorn's and uvicorn's ---------------------------

def config_of(argv: list[str]) -> config.Config:
    """The Config `hybrid ARGV` serves with (no process)."""
    args = vars(cli.build_parser().parse_args(argv))
    args.pop("command")
    translated, _, _ = peers.translate(args.pop("peer_flags", {}))
    return sources.load({**translated, **args}, {}).config


def from_command_line(argv: tuple[str, ...]) -> config.Config:
    """The Config `hybrid run APP ARGV` serves with."""
    return config_of(["run", "app:app", *argv])


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


def test_the_migration_page_says_where_the_defaults_differ():
    rows = [line for line in migrating_part(reference.DEFAULTS_TITLE) if line.startswith("| ")]
    assert len(rows) == len(peer_defaults.differences()) + 1  # (and the heading row)
