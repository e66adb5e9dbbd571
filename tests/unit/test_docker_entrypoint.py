"""docker/entrypoint.py and docker/requirements.py without Docker: the secrets written,
the URL built, the requirements the image installs.

The image and compose stack themselves are tested for real in tests/deploy/test_docker.py.
"""
from __future__ import annotations

import importlib.util
import stat
from pathlib import Path
from types import ModuleType
from urllib.parse import urlparse

import pytest

from radical.edge.app import acl, keys

ENTRYPOINT = Path(__file__).resolve().parents[2] / "docker" / "entrypoint.py"


@pytest.fixture(scope="module")
def entrypoint() -> ModuleType:
    spec = importlib.util.spec_from_file_location("docker_entrypoint", ENTRYPOINT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_secrets_are_private_files_matching_the_acl_file(entrypoint, tmp_path) -> None:
    entrypoint.write_secrets(tmp_path, ["alpha"])
    files = {p.name: p for p in tmp_path.iterdir()}
    assert set(files) == {"redis_users.acl", "redis_password_bridge", "redis_password_flower",
                          "redis_password_edge-alpha", "admin_token", "flower_auth"}
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in files.values())
    lines = files["redis_users.acl"].read_text().splitlines()
    assert lines[0].startswith("user default off")
    by_user = {line.split(" ")[1]: line.split(" ") for line in lines[1:]}
    for user, label in [(acl.bridge_user(), "bridge"), (acl.flower_user(), "flower"),
                        (acl.edge_user("alpha"), "edge-alpha")]:
        password = files[f"redis_password_{label}"].read_text().strip()
        assert f">{password}" in by_user[user]
    assert f"~{keys.edge_queue('alpha')}" in by_user[acl.edge_user("alpha")]
    assert len({p.read_text() for p in files.values()}) == len(files), "no value twice"


def test_configure_builds_the_roles_redis_url_from_the_password_file(
        entrypoint, tmp_path, monkeypatch) -> None:
    (tmp_path / "pw").write_text("s3cret\n")
    monkeypatch.setenv("REDIS_PASSWORD_FILE", str(tmp_path / "pw"))
    monkeypatch.setenv("RADICAL_EDGE_REDIS_URL", "redis://127.0.0.1:6390/0")
    monkeypatch.setenv("RADICAL_EDGE_EDGE_NAME", "alpha")
    entrypoint.configure("edge")
    url = urlparse(entrypoint.os.environ["RADICAL_EDGE_REDIS_URL"])
    assert (url.username, url.password, url.port) == (acl.edge_user("alpha"), "s3cret", 6390)
    assert "REDIS_PASSWORD_FILE" not in entrypoint.os.environ


def test_empty_secret_file_and_unknown_role_are_refused(entrypoint, tmp_path, monkeypatch,
                                                        capsys) -> None:
    (tmp_path / "pw").write_text("\n")
    monkeypatch.setenv("REDIS_PASSWORD_FILE", str(tmp_path / "pw"))
    with pytest.raises(SystemExit, match="is empty"):
        entrypoint.configure("bridge")
    assert entrypoint.main(["wizard"]) == 2
    assert "unknown role 'wizard'" in capsys.readouterr().err


def test_image_requirements_take_known_extras_and_skip_others(tmp_path, capsys) -> None:
    spec = importlib.util.spec_from_file_location("docker_requirements",
                                                  ENTRYPOINT.parent / "requirements.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "x"\ndependencies = ["httpx>=0.27"]\n'
        '[project.optional-dependencies]\nbridge = ["fastapi", "celery"]\n'
        'flower = ["celery", "flower"]\n')
    reqs = module.requirements(str(tmp_path / "pyproject.toml"), ["bridge", "edge", "flower"])
    assert reqs == ["httpx>=0.27", "fastapi", "celery", "flower"]
    assert "no extra 'edge'" in capsys.readouterr().err
